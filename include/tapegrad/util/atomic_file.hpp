#pragma once
/// \file
/// Writing a file atomically: the bytes go to a new temporary file in the same directory, which is flushed,
/// fsync'ed and renamed over the target. A reader sees the old file or the new one, never half of one, and
/// an error (or a crash) leaves the old file as it was. Used by checkpoints and plots.

#include <tapegrad/core/error.hpp>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

namespace tapegrad::util {

/// Writes `bytes` to `path` atomically. On any error the temporary file is removed, `path` keeps its
/// previous content, and FormatError starts with `where` (e.g. "save_safetensors: 'model.safetensors'").
inline void write_file_atomically(const std::filesystem::path& path, std::span<const unsigned char> bytes,
                                  const std::string& where) {
    namespace fs = std::filesystem;
    const auto errno_message = [](int err) { return std::generic_category().message(err); };
    TAPEGRAD_CHECK(path.has_filename(), FormatError, where, ": the path names no file");
    static std::atomic<unsigned long> counter{0};
#if defined(_WIN32)
    const auto pid = static_cast<unsigned long>(_getpid());
#else
    const auto pid = static_cast<unsigned long>(::getpid());
#endif
    fs::path tmp;
    std::FILE* f = nullptr;
    int open_errno = 0;
    // "x" makes the open fail rather than reuse a file that already exists (another writer's temporary).
    for (int attempt = 0; attempt < 100 && f == nullptr; ++attempt) {
        tmp = path;
        tmp.replace_filename(::tapegrad::detail::concat(path.filename().string(), ".tmp-", pid, "-", counter++));
        errno = 0;
#if defined(_WIN32)
        f = ::_wfopen(tmp.c_str(), L"wbx");
#else
        f = std::fopen(tmp.c_str(), "wbx");
#endif
        open_errno = errno;
        if (f == nullptr && open_errno != EEXIST) break;
    }
    TAPEGRAD_CHECK(f != nullptr, FormatError, where, ": cannot create temporary file '", tmp.string(),
                   "': ", errno_message(open_errno));

    // From here on, any way out that does not reach the rename removes the temporary file.
    struct Cleanup {
        std::FILE*& f;
        const fs::path& tmp;
        bool committed = false;
        ~Cleanup() {
            if (f != nullptr) std::fclose(f);
            if (!committed) {
                std::error_code ignored;
                fs::remove(tmp, ignored);
            }
        }
    } cleanup{f, tmp};

    const auto fail_io = [&](const char* what) {
        const int err = errno;
        ::tapegrad::detail::raise<FormatError>(where, ": ", what, " temporary file '", tmp.string(),
                                   "': ", errno_message(err));
    };
    errno = 0;
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) fail_io("cannot write");
    if (std::fflush(f) != 0) fail_io("cannot flush");
#if defined(_WIN32)
    if (::_commit(::_fileno(f)) != 0) fail_io("cannot sync");
#else
    if (::fsync(::fileno(f)) != 0) fail_io("cannot sync");
#endif
    std::FILE* to_close = f;
    f = nullptr;
    if (std::fclose(to_close) != 0) fail_io("cannot close");

    std::error_code ec;
    fs::rename(tmp, path, ec);
    TAPEGRAD_CHECK(!ec, FormatError, where, ": cannot rename temporary file '", tmp.string(), "' over it: ",
                   ec.message());
    cleanup.committed = true;
#if !defined(_WIN32)
    // Make the rename itself durable. Best effort: the new file is already in place, and some file
    // systems do not support syncing a directory.
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        static_cast<void>(::fsync(dir_fd));
        ::close(dir_fd);
    }
#endif
}

}  // namespace tapegrad::util
