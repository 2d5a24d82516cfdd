#!/usr/bin/env bash
# Runs tests/gui/gui_session.py: the extension used in a real Blender window (modal operators,
# the window manager's own event loop, undo, screenshots), which background mode cannot show.
# Not part of CI: it needs a Blender program (not the bpy module) of at least 4.2, given as
# $BLENDER or found on PATH; on Debian 12, `BLENDER=$(./scripts/gui_blender_chroot.sh)` makes one.
# Without a display it starts Xvfb. Blender runs twice on one user folder (the second time, the
# first session's jobs must be listed again). Writes out/gui/: reports, logs, screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
blender=${BLENDER:-blender}
out=$PWD/out/gui
rm -rf "$out" && mkdir -p "$out"
zip=$(.venv/bin/python scripts/build_extension.py --output-dir "$out" | tail -n 1)

xvfb_pid=""
if [ -z "${DISPLAY:-}" ]; then
  command -v Xvfb >/dev/null || { echo "no display and no Xvfb (apt-get install xvfb)" >&2; exit 1; }
  export DISPLAY=:87
  Xvfb "$DISPLAY" -screen 0 1600x1000x24 >"$out/xvfb.log" 2>&1 &
  xvfb_pid=$!
  trap '[ -n "$xvfb_pid" ] && kill "$xvfb_pid"' EXIT
  sleep 2
fi

export BLENDER_USER_RESOURCES=$out/user  # a fresh user folder: preferences, extensions
"$blender" --background --command extension install-file --repo user_default --enable "$zip" >"$out/install.log" 2>&1 \
  || { cat "$out/install.log"; exit 1; }
"$blender" --background --python-expr \
  "import bpy; bpy.context.preferences.view.show_splash = False; bpy.ops.wm.save_userpref()" >>"$out/install.log" 2>&1
export DIFFUSION3D_GUI_OUT=$out DIFFUSION3D_PYTHON=$PWD/.venv/bin/python DIFFUSION3D_TEST_MODELS=1
for phase in first reopen; do
  DIFFUSION3D_GUI_PHASE=$phase timeout 900 "$blender" --python tests/gui/gui_session.py \
    >"$out/blender_$phase.log" 2>&1 || true
done

.venv/bin/python - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
reports = {}
for phase in ("first", "reopen"):
    try:
        reports[phase] = report = json.load(open(os.path.join(out, f"gui_report_{phase}.json")))
    except OSError:
        sys.exit(f"the {phase} GUI session wrote no report; see {out}/blender_{phase}.log")
    for line in report["checks"]:
        print("ok  ", line)
    if not report["ok"]:
        sys.exit(f"FAILED in Blender {report['blender']} ({phase} session):\n{report.get('error', '')}\n"
                 f"log: {out}/blender_{phase}.log")
figures = reports["first"]["figures"]
pid = figures.get("backend_pid")
alive = pid is not None and os.path.exists(f"/proc/{pid}")
print("the first session's backend", "is STILL RUNNING after Blender quit" if alive else "stopped with Blender")
print("figures:", json.dumps(figures, indent=1))
sys.exit(1 if alive else 0)
EOF
