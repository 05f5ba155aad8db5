"""``kaizen export``: a saved model as one file, preprocessing inside, uint8 images in.

- ``onnx``: an ONNX graph (opset 17) with input ``images`` uint8 (N, C, H, W) and output
  ``logits`` (N, K), the batch dimension dynamic; the class names are in its metadata.
- ``torchscript``: a traced TorchScript module with the same signature.
- ``safetensors``: the weights with ``model.json`` in the file's metadata.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file

from kaizen.errors import ConfigError, KaizenError
from kaizen.production.predict import LoadedModel

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
ONNX_OPSET = 17
CHECK_TOLERANCE = 1e-4
"""Largest absolute logit difference ``--check`` accepts between the file and PyTorch."""


def export_model(model: LoadedModel, export_format: str, out: Path | None = None) -> Path:
    """Write ``model`` as ``export_format`` to ``out`` (default: ``<version>.<suffix>`` in the
    current folder) and return the path."""
    if export_format not in FORMATS:
        raise ConfigError(
            f"unknown export format {export_format!r}: choose one of {', '.join(FORMATS)}"
        )
    name = f"{model.folder.name}{FORMATS[export_format]}"
    path = out or Path(name)
    check_output_file(path, name)
    module = model.module.cpu().eval()
    example = torch.zeros((1, *model.spec.input_shape), dtype=torch.uint8)
    if export_format == "safetensors":
        state = {key: value.contiguous() for key, value in module.state_dict().items()}
        save_file(state, path, metadata={"model.json": json.dumps(model.spec.to_json())})
    elif export_format == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)  # PyTorch deprecates TorchScript
            traced = torch.jit.trace(module, example)
        traced.save(str(path))
    else:
        _export_onnx(model, example, path)
    return path


def check_output_file(path: Path, example: str) -> None:
    """Refuse an output path that cannot take a file: a folder, or one in a folder that does
    not exist. Missing folders are not created: a mistyped path would put the file where no
    one looks for it (as ``cp`` and ``gcc -o`` refuse it too)."""
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder: give a file path, e.g. {path / example}")
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(
            f"cannot write {path}: {folder} {problem}; create the folder "
            f"(mkdir -p {folder}) or choose another --out"
        )


def _export_onnx(model: LoadedModel, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript-based exporter: the graph is fixed by tracing one example batch
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.module,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    _add_class_names(path, model.class_names)


def _add_class_names(path: Path, names: tuple[str, ...]) -> None:
    """Record the class names in the ONNX file's metadata."""
    import onnx  # imported on use: it takes seconds to import and only export needs it

    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = "classes", json.dumps(list(names))
    onnx.save(graph, str(path))


def check_export(model: LoadedModel, export_format: str, path: Path, batch: int = 8) -> float:
    """Run the exported file on ``batch`` seeded random uint8 images and return the largest
    absolute difference from PyTorch's logits; :class:`KaizenError` above
    :data:`CHECK_TOLERANCE`. ONNX runs in onnxruntime, TorchScript in ``torch.jit``."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch, *model.spec.input_shape)
    images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    with torch.no_grad():
        expected = model.module.cpu().eval()(images)
    if export_format == "onnx":
        try:
            import onnxruntime  # optional (the dev extras): only --check runs the file
        except ImportError as error:
            raise ConfigError(
                "--check of an ONNX file needs onnxruntime: pip install onnxruntime"
            ) from error
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (logits,) = session.run(None, {"images": images.numpy()})
        found = torch.from_numpy(logits)
    elif export_format == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            found = torch.jit.load(str(path))(images)
    else:
        raise ConfigError(
            "--check runs ONNX and TorchScript files; a safetensors file holds weights"
        )
    finite = torch.isfinite(expected)
    difference = float((found[finite] - expected[finite]).abs().max())
    if difference > CHECK_TOLERANCE or not torch.equal(torch.isfinite(found), finite):
        raise KaizenError(
            f"{path} differs from the PyTorch model by {difference:.2e} (more than "
            f"{CHECK_TOLERANCE:g}): export it again, or report the model and the format"
        )
    return difference
