"""ONNX: export the network (``microast-video export --onnx``) and run it with ONNX Runtime or
OpenVINO (the bench's peers). Each runtime is an optional extra: ``pip install
'microast-video[onnx]'`` (exporter + ONNX Runtime), ``'microast-video[openvino]'``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.errors import OptionError
from ..core.options import (
    DEFAULT_MAX_PIXELS,
    MAX_STYLE_SIZE,
    megapixels,
    parse_resolution,
)
from ..core.output import AtomicFile
from ..models import MicroAST, StyleSignals
from ..models.export import ContentPath, FullNetwork
from ..style.signals import check_style_source

#: The opset the exporter targets (ONNX Runtime, OpenVINO and TensorRT all read it).
OPSET = 18


@dataclasses.dataclass(frozen=True)
class ExportSpec:
    """What to export: one style fixed inside (``signals``) or the style as an input; a fixed
    frame size (``size`` = (W, H)) or any size (``size`` None: dynamic height and width)."""

    signals: StyleSignals | None
    size: tuple[int, int] | None = (1920, 1080)
    alpha: float = 1.0
    batch: int = 1


def missing(extra: str) -> str | None:
    """Why an optional runtime cannot be used (None when it can): ``onnx`` or ``openvino``."""
    needs = {"onnx": ("onnx", "onnxscript"), "onnxruntime": ("onnxruntime",), "openvino": ("openvino",)}[extra]
    absent = [name for name in needs if importlib.util.find_spec(name) is None]
    if not absent:
        return None
    hint = "onnx" if extra in ("onnx", "onnxruntime") else "openvino"
    return f"{', '.join(absent)} not installed (pip install 'microast-video[{hint}]')"


def check_export(style: Path | None, signals: Path | None, size: str | None, dynamic: bool) -> tuple[int, int] | None:
    """The export's options, checked before any work; returns the fixed size (None: dynamic).
    A fixed size is at most ``--max-pixels``' default (exporting traces a frame that large)."""
    if dynamic and size is not None:
        raise OptionError("give either --size or --dynamic, not both")
    if style is not None or signals is not None:
        check_style_source([style] if style else [], signals)
    why = missing("onnx")
    if why:
        raise OptionError(f"export --onnx needs the ONNX exporter: {why}")
    if dynamic:
        return None
    w, h = parse_resolution(size or "1920x1080", "--size")
    if w * h > DEFAULT_MAX_PIXELS:
        raise OptionError(f"--size {w}x{h} is {megapixels(w * h)}, over the largest picture the tool takes "
                          f"({megapixels(DEFAULT_MAX_PIXELS)}); export --dynamic serves any size")
    return w, h


def export_onnx(model: MicroAST, spec: ExportSpec, target: Path, *, overwrite: bool = False) -> Path:
    """Write the network as ONNX to ``target`` (atomically); returns ``target``.

    Inputs: ``content`` (N, 3, H, W) float32 RGB in [0, 1] (and ``style`` (1, 3, h, w) when
    no signals are fixed). Output: ``stylized`` (N, 3, H, W) float32 in [0, 1].
    """
    why = missing("onnx")
    if why:
        raise OptionError(f"export --onnx needs the ONNX exporter: {why}")
    model = model.float().eval().to(memory_format=torch.contiguous_format)
    w, h = spec.size or (256, 192)
    content = torch.rand(spec.batch, 3, h, w)
    if spec.signals is not None:
        net, args, names = ContentPath(model, spec.signals.to("cpu"), spec.alpha), (content,), ["content"]
    else:
        net, args, names = FullNetwork(model, spec.alpha), (content, torch.rand(1, 3, 256, 256)), ["content", "style"]
    dynamic = None
    if spec.size is None:
        dim = torch.export.Dim
        height, width = dim("height", min=8, max=8192), dim("width", min=8, max=8192)
        dynamic = {"content": {2: 4 * height, 3: 4 * width}}
        if spec.signals is None:
            dynamic["style"] = {2: dim("style_height", min=16, max=MAX_STYLE_SIZE), 3: dim("style_width", min=16, max=MAX_STYLE_SIZE)}
    with AtomicFile(target, overwrite=overwrite, what="ONNX model") as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, args, input_names=names, output_names=["stylized"], opset_version=OPSET,
                                    dynamic_shapes=dynamic, dynamo=True, verbose=False, optimize=True)
        program.save(str(out.path))
        out.publish()
    return target


Runner = Callable[[np.ndarray], np.ndarray]


def onnxruntime_runner(path: Path, threads: int) -> Runner:
    """ONNX Runtime's CPU provider on ``path``, float32: (N, 3, H, W) float32 in, same out."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def openvino_runner(path: Path, threads: int, precision: str) -> Runner:
    """OpenVINO on the CPU, ``precision`` "f32" or "bf16" (its inference precision hint)."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                     "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()

    return run


def openvino_has_bf16() -> bool:
    """Whether OpenVINO offers bf16 on this CPU."""
    import openvino as ov

    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "BF16" in caps
