"""Command line: `python -m backend serve | generate | texture | edit | complete | mix | batch | models`.

    python -m backend serve --port 8765 --token SECRET
    python -m backend serve --ray HEAD:6379 --host 0.0.0.0 --token SECRET   (replicas on a Ray cluster)
    python -m backend generate --prompt "a wooden chair" --out chair.glb
    python -m backend generate --image photo.png --out thing.glb   (TripoSR)
    python -m backend texture --mesh statue.glb --prompt "weathered bronze" --out bronze.glb
    python -m backend edit --mesh chair.glb --parts leg --prompt "an office chair on wheels" --out office.glb
    python -m backend batch jobs.jsonl --out-dir results
    python -m backend models
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import traceback
from pathlib import Path

from .job_store import CacheDirInUse
from .input_files import face_mask_for_parts, mesh_as_glb, read_file
from .cluster.ray_executor import DEFAULT_STALL_S
from .cluster.scaling import DEFAULT_MAX_REPLICAS
from .jobs import DEFAULT_KEEP_JOBS
from .errors import GenerationFailed, InputError, JobCancelled, ModelUnavailable

TOKEN_ENV = "DIFFUSION3D_TOKEN"
CACHE_DIR_IN_USE = 75  # exit status (EX_TEMPFAIL); service/process.py reads it


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name (default: sys.argv[1:]).

    Returns:
        The exit status: 0 done, 1 failed, 2 bad usage or input, 75 the cache directory is in
        use by another backend (the add-on then takes another), 130 interrupted.
    """
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except CacheDirInUse as e:
        print(f"error: {e}", file=sys.stderr)
        return CACHE_DIR_IN_USE
    except (InputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ModelUnavailable, GenerationFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, JobCancelled):
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from .jobs import describe_error

        message = describe_error(e, getattr(args, "device", "cpu"))
        if message.startswith("internal error"):  # a bug: the traceback helps whoever reports it
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from .server import Settings, serve

    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        token = secrets.token_urlsafe(24)
        print(f"no --token or {TOKEN_ENV} given; this run's token is: {token}", file=sys.stderr)
    if not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        raise ValueError("--max-upload-mb must be a positive number of megabytes")
    if not 1 <= args.port <= 65535:
        raise ValueError("--port must be from 1 to 65535 (clients must know it: a port chosen by the system is not supported)")
    if args.keep_jobs < 1:
        raise ValueError("--keep-jobs must be at least 1 (a finished job's result must outlive its download)")
    if args.replicas < 0 or args.models_per_replica < 1 or args.max_replicas < 1:
        raise ValueError("--replicas must be 0 (one per GPU, else per CPU) or more, --models-per-replica and "
                         "--max-replicas at least 1")
    if not (math.isfinite(args.stall_timeout) and args.stall_timeout >= 0):
        raise ValueError("--stall-timeout must be 0 (never) or a number of seconds")
    if args.ray is None and (args.replicas or args.models_per_replica != 2 or args.max_replicas != DEFAULT_MAX_REPLICAS
                             or args.stall_timeout != DEFAULT_STALL_S):
        raise ValueError("--replicas, --max-replicas, --models-per-replica and --stall-timeout are for --ray; "
                         "without it this process runs the jobs")
    if args.replicas and args.max_replicas != DEFAULT_MAX_REPLICAS:
        raise ValueError("--replicas N runs exactly N replicas; --max-replicas caps the default, one per GPU "
                         "(or CPU) as machines join: give one or the other")
    _threads(args)
    _model_sources(args)
    settings = Settings(
        token=token, host=args.host, port=args.port, cache_dir=args.cache_dir, device=args.device,
        offline=args.offline, max_upload_mb=args.max_upload_mb, allowed_hosts=tuple(args.allowed_host),
        keep_jobs=args.keep_jobs, attention_slicing=args.attention_slicing, cpu_offload=args.cpu_offload,
        full_precision=args.full_precision, ray_address=args.ray, replicas=args.replicas,
        models_per_replica=args.models_per_replica, replica_threads=args.threads, max_replicas=args.max_replicas,
        stall_s=args.stall_timeout,
    )
    serve(settings, stop_when_stdin_closes=args.stop_when_stdin_closes)
    return 0


def _generate(args: argparse.Namespace) -> int:
    _model_sources(args)
    task = "text_to_3d" if args.prompt is not None else "image_to_3d"
    params, files = dict(args.param), {}
    if task == "text_to_3d":
        params["prompt"] = args.prompt
        if args.init:  # a draft to refine (the score-distillation models)
            files["mesh"] = mesh_as_glb(args.init, args.up)
    else:
        files["image"] = read_file(args.image, "image")
    return _run(args, task, params, files)


def _edit(args: argparse.Namespace) -> int:
    """`edit`, `complete` and `mix` (the built-in model's part edits) on a GLB it made, or any mesh."""
    _model_sources(args)
    mesh = mesh_as_glb(args.mesh, args.up)
    files = {"mesh": mesh}
    if args.parts:
        files["face_mask"] = face_mask_for_parts(mesh, args.parts)
    elif args.face_mask:
        files["face_mask"] = read_file(args.face_mask, "face mask")
    params = {**dict(args.param), "mode": args.mode}
    if args.prompt is not None:
        params["prompt"] = args.prompt
    if args.mode == "mix":
        files["mesh_b"] = mesh_as_glb(args.other, args.up)
        params["take_from_b"] = [name.strip() for name in args.take.split(",") if name.strip()]
    return _run(args, "edit_part", params, files)


def _batch(args: argparse.Namespace) -> int:
    """Every row of the JSONL file; 0 when all succeeded (now or before), 1 when some failed."""
    from .batch import run_batch
    from .devices import pick_device
    from .models import LoadOptions, downloads_allowed

    _model_sources(args)
    _threads(args)
    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be at least 1")
    device, dtype = pick_device(args.device, args.full_precision)
    options = LoadOptions(device=device, dtype=dtype, allow_downloads=downloads_allowed(args.offline),
                          attention_slicing=args.attention_slicing, cpu_offload=args.cpu_offload)
    out_dir = Path(args.out_dir)
    summary = run_batch(Path(args.jobs), out_dir, options, ray_address=args.ray, workers=args.workers)
    print(f"{summary.succeeded} succeeded, {summary.skipped} done before, {summary.failed} failed "
          f"(see {out_dir / 'results.jsonl'})", file=sys.stderr)
    return 1 if summary.failed else 0


def _texture(args: argparse.Namespace) -> int:
    _model_sources(args)
    params = {**dict(args.param), "prompt": args.prompt}
    if args.texture_size is not None:
        params["texture_size"] = args.texture_size
    files = {"mesh": mesh_as_glb(args.mesh, args.up)}
    if args.image:
        files["image"] = read_file(args.image, "reference image")
    return _run(args, "texture", params, files)


def _run(args: argparse.Namespace, task: str, params: dict, files: dict[str, bytes]) -> int:
    """Run one job of `task` in this process and write its GLB to --out."""
    from tqdm import tqdm

    from .devices import pick_device
    from .geometry.glb import mesh_result_to_glb
    from .jobs import checked_request
    from .models import LoadOptions, downloads_allowed, get_entry, registry

    # 1. Check inputs
    entry = get_entry(task, args.model, registry())
    if getattr(args, "init", None) and not entry.takes_draft:
        drafts = ", ".join(e.name for e in registry() if e.takes_draft)
        raise InputError(f"--init: model {entry.name} does not start from a draft; these do: {drafts}")
    for key, value in (("negative_prompt", args.negative_prompt), ("num_inference_steps", args.steps),
                       ("guidance_scale", args.guidance), ("seed", args.seed)):
        if value is not None:
            params[key] = value
    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out is a folder: give the file to write, e.g. {out / 'result.glb'}")
    if out.suffix.lower() != ".glb":
        raise InputError(f"--out must be a .glb file (the result is binary glTF), got {out.name}")
    if not out.parent.is_dir():
        raise InputError(f"the folder of --out does not exist: {out.parent}")
    params = checked_request(entry, params, files)  # all it can be refused for before the model loads

    # 2. Load the model
    device, dtype = pick_device(args.device, args.full_precision)
    threads = _threads(args)
    print(f"{entry.name} ({task}) on {device} ({threads} CPU threads), seed {params['seed']}", file=sys.stderr)
    pipe = entry.load(LoadOptions(device=device, dtype=dtype, allow_downloads=downloads_allowed(args.offline),
                                  attention_slicing=args.attention_slicing, cpu_offload=args.cpu_offload))

    # 3. Run, one progress bar per phase
    bars: dict[str, tqdm] = {}

    def callback(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
        if phase not in bars:
            for bar in bars.values():
                bar.close()
            bars[phase] = tqdm(total=total, desc=phase, unit="step", file=sys.stderr)
        bars[phase].total = total  # the texture's total drops when fill views are not needed
        bars[phase].update(step - bars[phase].n)

    try:
        result = entry.run(pipe, params, files, callback)
    finally:
        for bar in bars.values():
            bar.close()

    # 4. Write the candidate images (a gallery), then the GLB
    for index, image in enumerate(result.candidates):
        from PIL import Image

        path = out.with_name(f"{out.stem}-candidate-{index}.png")
        Image.fromarray(image).save(path)
        print(f"wrote {path}", file=sys.stderr)
    if not result.parts:
        print(f"no mesh: pick a candidate and run `generate --image {out.stem}-candidate-K.png`", file=sys.stderr)
        return 0
    out.write_bytes(mesh_result_to_glb(result))
    triangles = sum(len(p.faces) for p in result.parts)
    print(f"wrote {out} ({len(result.parts)} part(s), {triangles} triangles)", file=sys.stderr)
    for note in result.metadata.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import registry

    entries = registry()
    if args.json:
        print(json.dumps([e.describe() for e in entries], indent=2))
        return 0
    if not entries:
        print("no models are installed", file=sys.stderr)
        return 1
    for d in (e.describe() for e in entries):
        flags = ("default " if d["default"] else "") + ("offline" if d["available_offline"] else "needs download")
        print(f"{d['name']:16} {d['task']:12} {flags:24} {d['source']}")
        print(f"{'':16} {d['description']}" + (f"; knows: {', '.join(d['knows'])}" if d["knows"] else ""))
    return 0


def _model_arguments(p: argparse.ArgumentParser) -> None:
    """What `generate` and `texture` share: the model, its settings, the device, --out."""
    from .devices import DEVICE_CHOICES

    p.add_argument("--model", help="model name (default: the task's default; see `models`)")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, help="num_inference_steps")
    p.add_argument("--guidance", type=float, help="guidance_scale")
    p.add_argument("--negative-prompt")
    p.add_argument("--param", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="any other model parameter (value parsed as JSON when it can be)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--offline", action="store_true", help="never download model weights")
    p.add_argument("--out", required=True, help="where to write the .glb")
    _threads_argument(p)
    _loading_arguments(p)


def _threads_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for torch (default 0: torch's default, the physical cores; "
                        "fewer when other busy programs share the machine)")


def _threads(args: argparse.Namespace) -> int:
    from .devices import set_cpu_threads

    if args.threads < 0:
        raise ValueError("--threads must be 0 (automatic) or a positive number")
    return set_cpu_threads(args.threads)


def _loading_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--attention-slicing", action="store_true",
                   help="compute attention in slices: saves memory only where PyTorch's fused attention is "
                        "missing (MPS, older GPUs); a little slower")
    p.add_argument("--cpu-offload", action="store_true",
                   help="keep models on the CPU and move each to the GPU only while it runs (CUDA): "
                        "the least GPU memory, about 3x slower per step")
    p.add_argument("--full-precision", action="store_true",
                   help="float32 on CUDA too (fp16 is the default there): about twice the GPU memory, "
                        "for GPUs whose fp16 gives black or noisy images")
    p.add_argument("--model-source", action="append", default=[], metavar="ID=FOLDER",
                   help="load the model published as ID (e.g. openai/shap-e) from FOLDER or another repo id "
                        "instead (repeatable; adds to $DIFFUSION3D_MODEL_SOURCES)")


def _model_sources(args: argparse.Namespace) -> None:
    """--model-source pairs join DIFFUSION3D_MODEL_SOURCES, which the model loaders read."""
    from .hub import MODEL_SOURCES_ENV

    for pair in args.model_source:
        key, sep, value = pair.partition("=")
        if not (sep and key.strip() and value.strip()) or ";" in pair:
            raise ValueError(f"--model-source takes ID=FOLDER (e.g. openai/shap-e=/models/shap-e), got {pair!r}")
    if args.model_source:
        current = os.environ.get(MODEL_SOURCES_ENV, "")
        os.environ[MODEL_SOURCES_ENV] = ";".join(filter(None, [current, *args.model_source]))


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)  # numbers, true/false, null; anything else stays text
    except json.JSONDecodeError:
        return key, value


def _parser() -> argparse.ArgumentParser:
    from .devices import DEVICE_CHOICES
    from .server import DEFAULT_PORT

    parser = argparse.ArgumentParser(prog="python -m backend", description="Diffusion 3D backend")
    sub = parser.add_subparsers(required=True, metavar="{serve,generate,texture,edit,complete,mix,batch,models}")

    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--token", help=f"bearer token clients must send (default: ${TOKEN_ENV})")
    p.add_argument("--cache-dir", default="", help="job database and results (default ~/.cache/diffusion3d)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--offline", action="store_true", help="never download model weights")
    p.add_argument("--max-upload-mb", type=float, default=256)
    _threads_argument(p)
    p.add_argument("--keep-jobs", type=int, default=DEFAULT_KEEP_JOBS, metavar="N",
                   help=f"finished jobs kept with their results; older ones are deleted (default {DEFAULT_KEEP_JOBS})")
    p.add_argument("--stop-when-stdin-closes", action="store_true",
                   help="stop when standard input ends (the add-on holds it open while Blender runs)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="another name clients may use in the Host header (repeatable; NAME or NAME:PORT)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run the jobs on a Ray cluster's replicas (ADDRESS: HEAD:6379, or auto; alone: a Ray "
                        "instance on this machine); this process stays the HTTP front, records and results")
    p.add_argument("--replicas", type=int, default=0, metavar="N",
                   help="with --ray: exactly N replicas (default one per GPU in the cluster, else one per CPU, "
                        "following the cluster as machines join or leave)")
    p.add_argument("--max-replicas", type=int, default=DEFAULT_MAX_REPLICAS, metavar="N",
                   help="with --ray and no --replicas: the most replicas it grows to as machines join "
                        f"(default {DEFAULT_MAX_REPLICAS})")
    p.add_argument("--stall-timeout", type=float, default=DEFAULT_STALL_S, metavar="SECONDS",
                   help="with --ray: a replica that sends no news of its running job this long is hung: it is "
                        f"stopped and the job runs again once elsewhere (default {DEFAULT_STALL_S:.0f}; 0: never)")
    p.add_argument("--models-per-replica", type=int, default=2, metavar="N",
                   help="with --ray: models a replica keeps loaded, least recently used out first (default 2); "
                        "--threads then sets each CPU replica's torch threads (default: its node's CPUs shared)")
    _loading_arguments(p)
    p.set_defaults(command=_serve)

    p = sub.add_parser("generate", help="run one generation in this process and write a GLB")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="text to 3D")
    source.add_argument("--image", help="image to 3D (PNG or JPEG)")
    p.add_argument("--init", metavar="MESH", help="a draft to start from (dreamfusion-sd): .glb, or .obj, .ply, .stl, "
                                                   ".off converted; the result keeps its place and size")
    p.add_argument("--up", choices=("auto", "y", "z"), default="auto",
                   help="the axis pointing up in a converted --init file (auto: z for .stl and .ply, else y)")
    _model_arguments(p)
    p.set_defaults(command=_generate)

    p = sub.add_parser("texture", help="texture a mesh file in this process and write a GLB",
                       description="Paint one texture for everything in the file: its meshes share it (their UV "
                                   "layouts side by side in tiles where they would overlap). For one texture per "
                                   "object, give one object per file.")
    p.add_argument("--mesh", required=True, help="the mesh to paint (.glb; .obj, .ply, .stl, .off are converted)")
    p.add_argument("--prompt", required=True, help="what the surface should look like")
    p.add_argument("--image", help="a reference image projected first (PNG or JPEG; its camera: "
                                   "--param reference_camera='{\"eye\": [x, y, z]}')")
    p.add_argument("--texture-size", type=int, help="texels per side of the one texture, 1024-4096")
    p.add_argument("--up", choices=("auto", "y", "z"), default="auto",
                   help="the axis pointing up in a converted mesh file (auto: z for .stl and .ply, else y; "
                        "a .glb is always y); the written GLB is y up, as glTF is")
    _model_arguments(p)
    p.set_defaults(command=_texture)

    for mode, summary in (("edit", "regenerate the chosen parts of a mesh from a prompt"),
                          ("complete", "regenerate the chosen parts of a mesh from the rest of it"),
                          ("mix", "bring parts of another mesh into a mesh")):
        p = sub.add_parser(mode, help=f"{summary} (the built-in model) and write a GLB")
        p.add_argument("--mesh", required=True, help="the mesh (.glb from the built-in model, or any mesh: its "
                                                     "pieces become parts; .obj, .ply, .stl, .off converted)")
        chosen = p.add_mutually_exclusive_group(required=mode != "mix")
        chosen.add_argument("--parts", help="parts to " + ("replace" if mode == "mix" else "regenerate") +
                                            ", comma-separated names or labels (e.g. leg or leg.0,back)")
        chosen.add_argument("--face-mask", help="or a file of one byte per triangle of the GLB, nonzero = chosen")
        p.add_argument("--prompt", required=mode == "edit", help="what the parts should become" if mode == "edit"
                       else "optional: what the object is, to guide the result")
        if mode == "mix":
            p.add_argument("--with", dest="other", required=True, help="the mesh to take parts from")
            p.add_argument("--take", required=True, help="its parts to bring in, comma-separated names or labels")
        p.add_argument("--up", choices=("auto", "y", "z"), default="auto",
                       help="the axis pointing up in converted mesh files (auto: z for .stl and .ply, else y)")
        _model_arguments(p)
        p.set_defaults(command=_edit, mode=mode)

    p = sub.add_parser("batch", help="run every job of a JSONL file in this process, resumably",
                       description="One JSON object per line: {\"name\", \"task\", \"model\", \"prompt\", "
                                   "\"params\", and files \"mesh\", \"image\", \"mesh_b\", \"texture\", "
                                   "\"face_mask\" relative to the file}. Writes NAME.glb, NAME.png and NAME.json per "
                                   "row and results.jsonl; rows done by an earlier run are skipped.")
    p.add_argument("jobs", help="the JSONL file")
    p.add_argument("--out-dir", required=True, help="folder for the outputs (made if missing; with --ray, one "
                                                    "every node reaches)")
    p.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                   help="spread the rows over a Ray cluster: its address (default: the one this machine belongs "
                        "to), or 'local' to start one here (pip install -r backend/requirements-cluster.txt)")
    p.add_argument("--workers", type=int, metavar="N", help="with --ray: at most N workers (default: one per GPU "
                                                             "in the cluster, else one per CPU core)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--offline", action="store_true", help="never download model weights")
    _threads_argument(p)
    _loading_arguments(p)
    p.set_defaults(command=_batch)

    p = sub.add_parser("models", help="list the models this backend serves")
    p.add_argument("--json", action="store_true")
    p.set_defaults(command=_models)
    return parser


if __name__ == "__main__":
    sys.exit(main())
