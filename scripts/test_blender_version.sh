#!/usr/bin/env bash
# Runs the Blender tests on another Blender release (the bpy wheel from PyPI), e.g. the oldest
# the manifest allows: `./scripts/test_blender_version.sh 4.2.0`. Not part of CI (each release
# is a ~500 MB download). The release gets its own venv, .venv-bpy-<version>, which sees the
# main venv's packages (backend, pytest) behind its own bpy and numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: $0 BLENDER_VERSION (e.g. 4.2.0)}
shift
./scripts/setup.sh
venv=.venv-bpy-$version
[ -x "$venv/bin/python" ] || .venv/bin/python -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "bpy==$version"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
main_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$main_site" > "$site/zz_main_venv.pth"  # after the release's own packages: its bpy wins
# Older releases (4.2) were built against numpy 1.x and fail to import next to numpy 2.
"$venv/bin/python" -c "import bpy" 2>/dev/null || "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "numpy<2"
"$venv/bin/python" -c "import bpy; print('Blender', bpy.app.version_string)"
exec "$venv/bin/python" -m pytest -p no:cacheprovider tests/blender "$@"
