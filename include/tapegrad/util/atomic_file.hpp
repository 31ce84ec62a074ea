#pragma once
/// \file
/// Writing files atomically: the bytes go to a new temporary file in the same directory, which is flushed,
/// fsync'ed and renamed over the target. A reader sees the old file or the new one, never half of one, and
/// an error (or a crash) leaves the old file as it was. Used by checkpoints and plots.
///
/// - `write_file_atomically`: one file.
/// - `write_files_atomically`: several files, all or nothing (a model and its optimizer state).
/// - `check_writable`: whether a later write can succeed, checked up front (before a long training run).
///
/// A temporary is named `<target>.tmp-<pid>-<n>`. A process killed while it writes (a signal, a power cut)
/// cannot remove its temporary; the next write to the same target removes every such temporary whose
/// process no longer runs on this machine, so none stays behind for good.

#include <tapegrad/core/error.hpp>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#else
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#endif

namespace tapegrad::util {

/// One file for `write_files_atomically`: its path, its new content, and how errors about it begin
/// (e.g. "save_safetensors: 'model.safetensors'").
struct FileContent {
    std::filesystem::path path;
    std::span<const unsigned char> bytes;
    std::string where;
};

namespace detail {

[[nodiscard]] inline unsigned long current_pid() noexcept {
#if defined(_WIN32)
    return static_cast<unsigned long>(_getpid());
#else
    return static_cast<unsigned long>(::getpid());
#endif
}

[[nodiscard]] inline std::string errno_message(int err) { return std::generic_category().message(err); }

/// A new, empty file beside `path` named `<name>.tmp-<pid>-<n>`, opened for writing; `tmp` receives its
/// name. Throws FormatError starting with `where` when none can be created.
[[nodiscard]] inline std::FILE* create_temporary(const std::filesystem::path& path, std::filesystem::path& tmp,
                                                 const std::string& where) {
    static std::atomic<unsigned long> counter{0};
    std::FILE* f = nullptr;
    int open_errno = 0;
    // "x" makes the open fail rather than reuse a file that already exists (another writer's temporary).
    for (int attempt = 0; attempt < 100 && f == nullptr; ++attempt) {
        tmp = path;
        tmp.replace_filename(
            ::tapegrad::detail::concat(path.filename().string(), ".tmp-", current_pid(), "-", counter++));
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
    return f;
}

/// The pid in a file name `<target>.tmp-<pid>-<n>`, or 0 when `name` is not such a name.
[[nodiscard]] inline unsigned long temporary_owner(std::string_view name, std::string_view target) noexcept {
    if (name.size() <= target.size() + 5 || name.substr(0, target.size()) != target ||
        name.substr(target.size(), 5) != ".tmp-")
        return 0;
    const std::string_view rest = name.substr(target.size() + 5);
    unsigned long pid = 0, n = 0;
    const char* end = rest.data() + rest.size();
    const auto [p1, e1] = std::from_chars(rest.data(), end, pid);
    if (e1 != std::errc() || p1 == end || *p1 != '-') return 0;
    const auto [p2, e2] = std::from_chars(p1 + 1, end, n);
    if (e2 != std::errc() || p2 != end || p1 + 1 == end) return 0;
    return pid;
}

/// Removes the temporaries of `path` left by processes that no longer run (killed while they wrote).
/// Best effort: never throws. Temporaries of this process and of running ones are kept (they may be
/// writing now).
inline void remove_stale_temporaries(const std::filesystem::path& path) noexcept {
#if !defined(_WIN32)
    namespace fs = std::filesystem;
    try {
        const std::string target = path.filename().string();
        const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
        std::error_code ec;
        std::vector<fs::path> stale;
        for (fs::directory_iterator it(dir, ec), last; !ec && it != last; it.increment(ec)) {
            const unsigned long pid = temporary_owner(it->path().filename().string(), target);
            if (pid == 0 || pid == current_pid() || pid > static_cast<unsigned long>(INT32_MAX)) continue;
            // kill(pid, 0) sends nothing; ESRCH says that no such process exists.
            if (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) stale.push_back(it->path());
        }
        for (const fs::path& p : stale) fs::remove(p, ec);
    } catch (...) {  // out of memory while listing: the stale files wait for the next write
    }
#else
    (void)path;
#endif
}

/// Makes renames in `dir` durable. Best effort: some file systems do not support syncing a directory.
inline void sync_directory([[maybe_unused]] const std::filesystem::path& path) noexcept {
#if !defined(_WIN32)
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        static_cast<void>(::fsync(dir_fd));
        ::close(dir_fd);
    }
#endif
}

/// Temporaries (and backups) removed when the scope ends, unless released.
struct TemporaryFiles {
    std::vector<std::filesystem::path> paths;
    TemporaryFiles() = default;
    TemporaryFiles(const TemporaryFiles&) = delete;
    TemporaryFiles& operator=(const TemporaryFiles&) = delete;
    ~TemporaryFiles() {
        for (const auto& p : paths) {
            std::error_code ignored;
            std::filesystem::remove(p, ignored);
        }
    }
};

/// Writes `bytes` to a new temporary beside `path`, flushed, synced and closed; returns its name. On any
/// error the temporary is removed and FormatError starts with `where`.
[[nodiscard]] inline std::filesystem::path write_temporary(const std::filesystem::path& path,
                                                           std::span<const unsigned char> bytes,
                                                           const std::string& where) {
    std::filesystem::path tmp;
    std::FILE* f = create_temporary(path, tmp, where);
    TemporaryFiles guard;
    guard.paths.push_back(tmp);
    struct Closer {
        std::FILE*& f;
        ~Closer() {
            if (f != nullptr) std::fclose(f);
        }
    } closer{f};
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
    guard.paths.clear();
    return tmp;
}

}  // namespace detail

/// Checks, without writing it, that `path` can be written by `write_file_atomically`: it names a file, is
/// not a folder, and its folder exists and takes new files (a probe file is created there and removed at
/// once). Call it before work whose result would be lost (a training run that ends in a save). Throws
/// FormatError starting with `where` and saying why.
inline void check_writable(const std::filesystem::path& path, const std::string& where) {
    namespace fs = std::filesystem;
    TAPEGRAD_CHECK(path.has_filename(), FormatError, where, ": the path names no file");
    std::error_code ec;
    TAPEGRAD_CHECK(!fs::is_directory(path, ec), FormatError, where, ": is a folder, not a file");
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    const bool dir_ok = fs::is_directory(dir, ec);
    TAPEGRAD_CHECK(dir_ok, FormatError, where, ": its folder '", dir.string(), "' ",
                   fs::exists(dir, ec) ? "is not a folder" : "does not exist");
    fs::path probe;
    std::FILE* f = detail::create_temporary(path, probe, where);
    std::fclose(f);
    fs::remove(probe, ec);
}

/// Writes each file's bytes to its path, all or nothing: every new content is first written to its own
/// temporary, and only when all of them are written are they renamed over their targets. If any step
/// fails, every target keeps its previous content (or stays absent), every temporary is removed, and
/// FormatError starts with the failing file's `where`. A crash in the middle of the renames can leave
/// some targets new and others old (the renames are not one operation); an error cannot.
inline void write_files_atomically(std::span<const FileContent> files) {
    namespace fs = std::filesystem;
    for (const FileContent& file : files) {
        TAPEGRAD_CHECK(file.path.has_filename(), FormatError, file.where, ": the path names no file");
        detail::remove_stale_temporaries(file.path);
    }
    detail::TemporaryFiles temporaries;
    for (const FileContent& file : files) temporaries.paths.push_back(detail::write_temporary(file.path, file.bytes, file.where));

    // Rename one by one. Before replacing a target that a later rename could still fail after, keep its
    // old content as a hard link, so a failure puts it back.
    struct Done {
        fs::path target, backup;  // backup empty: the target did not exist before
    };
    std::vector<Done> done;
    detail::TemporaryFiles backups;
    const auto roll_back = [&]() noexcept {
        for (auto it = done.rbegin(); it != done.rend(); ++it) {
            std::error_code ignored;
            if (it->backup.empty())
                fs::remove(it->target, ignored);
            else
                fs::rename(it->backup, it->target, ignored);
        }
    };
    for (size_t i = 0; i < files.size(); ++i) {
        const FileContent& file = files[i];
        fs::path backup;
        std::error_code ec;
        const bool more_follow = i + 1 < files.size();
        if (more_follow && fs::is_regular_file(file.path, ec)) {
            std::FILE* f = detail::create_temporary(file.path, backup, file.where);
            std::fclose(f);
            fs::remove(backup, ec);
            fs::create_hard_link(file.path, backup, ec);
            if (ec) {
                roll_back();
                ::tapegrad::detail::raise<FormatError>(file.where, ": cannot keep the previous file while the others are written: ",
                                                       ec.message());
            }
            backups.paths.push_back(backup);
        }
        fs::rename(temporaries.paths[i], file.path, ec);
        if (ec) {
            roll_back();
            ::tapegrad::detail::raise<FormatError>(file.where, ": cannot rename temporary file '",
                                                   temporaries.paths[i].string(), "' over it: ", ec.message());
        }
        done.push_back({file.path, backup});
    }
    temporaries.paths.clear();  // renamed: nothing left to remove
    for (const FileContent& file : files) detail::sync_directory(file.path);
}

/// Writes `bytes` to `path` atomically. On any error the temporary file is removed, `path` keeps its
/// previous content, and FormatError starts with `where` (e.g. "save_safetensors: 'model.safetensors'").
inline void write_file_atomically(const std::filesystem::path& path, std::span<const unsigned char> bytes,
                                  const std::string& where) {
    const FileContent one[] = {{path, bytes, where}};
    write_files_atomically(one);
}

}  // namespace tapegrad::util
