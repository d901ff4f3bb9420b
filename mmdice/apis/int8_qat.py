"""Quantization-aware fine-tuning (QAT) for OpenVINO int8, distilled from the
fp32 model's own outputs (no labels).

The deploy form runs inside :func:`mmdice.ops.extension.reference_graph`: its
fused ops run their pure-PyTorch references, which have autograd, and the
graph is the same eager, traced and trained. NNCF's PyTorch post-training
quantization places fake quantizers on it (per-channel symmetric int8 weights,
per-tensor int8 activations; the preset and activation range estimator of
:func:`~mmdice.apis.quantize.quantize_model`) and sets their ranges on the
calibration images. Then the weights, biases and quantizer ranges are
fine-tuned with Adam so that the fake-quantized model reproduces the fp32
model's outputs (mean squared error over every output tensor, the teacher
being the fp32 model itself) on the calibration images, each randomly flipped
left-right. The fine-tuning sees the network's raw (``mode='tensor'``)
outputs; the exported graph is those outputs or, by default, the end-to-end
graph around the fine-tuned network (:func:`~mmdice.apis.end2end.end2end_module`,
its post-processing in floating point; segmentors and classifiers).
OpenVINO's PyTorch frontend converts the result: FakeQuantize nodes, which
OpenVINO's CPU plugin runs in int8, as for post-training quantization.

NNCF builds its quantization kernels on first use (a C++ extension, cached in
``~/.cache/torch_extensions``); on a loaded machine the build takes longer
than NNCF's default 60 s limit, which is lifted here unless
``NNCF_EXTENSION_LOAD_TIMEOUT`` is set.
"""
import os
import time
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .quantize import DEFAULT_OVERFLOW_FIX, DEFAULT_PRESET

__all__ = ['QAT_STEPS', 'QAT_LEARNING_RATE', 'QAT_BATCH', 'add_qat_args', 'distillation_loss',
           'quantize_aware_training']

#: Default fine-tuning steps, Adam learning rate and images per step.
QAT_STEPS = 300
QAT_LEARNING_RATE = 1e-5
QAT_BATCH = 2


def add_qat_args(parser) -> None:
    """--qat, --qat-steps, --qat-lr and --qat-batch of the int8 tools."""
    parser.add_argument('--qat', action='store_true',
                        help='quantization-aware fine-tuning (NNCF, PyTorch) distilled from the '
                        "fp32 model's outputs on the calibration images instead of "
                        'post-training quantization (takes --preset, --range-estimator and '
                        '--overflow-fix)')
    parser.add_argument('--qat-steps', type=int, default=QAT_STEPS,
                        help=f'fine-tuning steps (default: {QAT_STEPS})')
    parser.add_argument('--qat-lr', type=float, default=QAT_LEARNING_RATE,
                        help=f'Adam learning rate (default: {QAT_LEARNING_RATE})')
    parser.add_argument('--qat-batch', type=int, default=QAT_BATCH,
                        help=f'calibration images per step (default: {QAT_BATCH})')


def distillation_loss(student: Sequence[torch.Tensor],
                      teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over the output tensors of their mean squared difference (each
    output weighted alike whatever its size)."""
    return torch.stack([F.mse_loss(s, t) for s, t in zip(student, teacher)]).mean()


def quantize_aware_training(module: torch.nn.Module,
                            inputs: Sequence[torch.Tensor],
                            *,
                            steps: int = QAT_STEPS,
                            learning_rate: float = QAT_LEARNING_RATE,
                            batch_size: int = QAT_BATCH,
                            preset: str = DEFAULT_PRESET,
                            range_estimator: str = 'minmax',
                            overflow_fix: str = DEFAULT_OVERFLOW_FIX,
                            seed: int = 0,
                            raw: bool = True,
                            scores: bool = False,
                            log: Optional[Callable[[str], None]] = print,
                            source: str = 'the model'):
    """int8 OpenVINO model of the deploy-form ``module`` (a
    :class:`~mmdice.apis.TensorModeWrapper`, left unchanged) fine-tuned with
    quantization in the loop for ``steps`` Adam steps of ``batch_size`` of the
    calibration ``inputs`` ((1, C, H, W) tensors of one size; their ranges
    initialise the quantizers); see the module docstring. ``overflow_fix``: one
    of :data:`~mmdice.apis.quantize.OVERFLOW_FIXES`. ``raw``: the model's
    outputs are the network's (named as :func:`~mmdice.apis.deploy_module`
    names them); else the end-to-end graph's (``scores``: a classifier also
    outputs scores); ValueError for an end-to-end detector (its NMS is a
    custom op translated for the ONNX exporter only). ``log``:
    called with a progress line every tenth of the steps (None: silent).
    QuantizationError if NNCF cannot quantize the model or OpenVINO cannot
    convert it."""
    import copy

    from mmdice.ops.extension import reference_graph

    from .end2end import end2end_module, end2end_output_names, model_task, raw_output_names
    from .onnx_export import flat_outputs
    from .quantize import (OVERFLOW_FIXES, PRESETS, RANGE_ESTIMATORS, QuantizationError,
                           check_choice)
    check_choice('preset', preset, PRESETS)
    check_choice('range_estimator', range_estimator, RANGE_ESTIMATORS)
    check_choice('overflow_fix', overflow_fix, OVERFLOW_FIXES)
    if steps < 0 or batch_size < 1 or learning_rate <= 0:
        raise ValueError(f'steps must be >= 0, batch_size >= 1 and learning_rate > 0, got '
                         f'{steps}, {batch_size}, {learning_rate}')
    if not raw and model_task(module.model) == 'detector':
        raise ValueError("quantization-aware training converts with OpenVINO's PyTorch "
                         "frontend, which has no translation of the end-to-end detector's "
                         'NMS: export the raw outputs (raw=True, --raw)')
    os.environ.setdefault('NNCF_EXTENSION_LOAD_TIMEOUT', '0')
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    teacher = copy.deepcopy(module).eval()
    images = torch.cat(list(inputs))
    generator = torch.Generator().manual_seed(seed)
    with reference_graph():
        try:
            student = nncf.quantize(
                teacher, nncf.Dataset(list(inputs)), subset_size=len(inputs),
                preset=getattr(nncf.QuantizationPreset, preset.upper()),
                advanced_parameters=AdvancedQuantizationParameters(
                    overflow_fix=OverflowFix(overflow_fix),
                    activations_range_estimator_params=getattr(RangeEstimatorParametersSet,
                                                               range_estimator.upper())))
        except Exception as error:  # noqa: BLE001 - NNCF raises many kinds
            lines = str(error).strip().splitlines()
            raise QuantizationError(f'NNCF (PyTorch) could not quantize {source}: '
                                    f'{type(error).__name__}: {lines[0] if lines else ""}'
                                    ) from error
        student.eval()
        parameters = [p for p in student.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(parameters, lr=learning_rate)
        started, recent = time.perf_counter(), []
        for step in range(steps):
            pick = torch.randint(len(images), (batch_size, ), generator=generator)
            batch = images[pick]
            flip = torch.rand(batch_size, generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
            with torch.no_grad():
                target = flat_outputs(teacher(batch))
            loss = distillation_loss(flat_outputs(student(batch)), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            recent.append(float(loss))
            if log is not None and ((step + 1) % max(1, steps // 10) == 0 or step + 1 == steps):
                log(f'QAT step {step + 1}/{steps}: distillation loss {np.mean(recent):.5f} '
                    f'({time.perf_counter() - started:.0f} s)')
                recent = []
        student.eval()
        if raw:
            exported = student
            with torch.no_grad():
                names = raw_output_names(module.model, module(inputs[0]))
        else:
            exported = end2end_module(teacher.model, scores, network=student)
            names = end2end_output_names(teacher.model, scores)
        try:
            with torch.no_grad():
                converted = ov.convert_model(exported, example_input=inputs[0])
        except Exception as error:  # noqa: BLE001 - the frontend raises many kinds
            lines = str(error).strip().splitlines()
            raise QuantizationError(f'OpenVINO cannot convert the fine-tuned int8 {source}: '
                                    f'{type(error).__name__}: {lines[0] if lines else ""}'
                                    ) from error
    for output, name in zip(converted.outputs, names):
        output.get_tensor().set_names({name})
    return converted
