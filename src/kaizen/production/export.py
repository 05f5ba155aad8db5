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

from kaizen.errors import ConfigError
from kaizen.production.predict import LoadedModel

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
ONNX_OPSET = 17


def export_model(model: LoadedModel, export_format: str, out: Path | None = None) -> Path:
    """Write ``model`` as ``export_format`` to ``out`` (default: ``<version>.<suffix>`` in the
    current folder) and return the path."""
    if export_format not in FORMATS:
        raise ConfigError(
            f"unknown export format {export_format!r}: choose one of {', '.join(FORMATS)}"
        )
    path = out or Path(f"{model.folder.name}{FORMATS[export_format]}")
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
    import onnx

    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = "classes", json.dumps(list(names))
    onnx.save(graph, str(path))
