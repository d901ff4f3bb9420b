"""End-to-end graphs of OpenMMLab models for deployment: image tensor in,
the codebase's predictions out, with the post-processing that ``predict``
does in Python inside the graph.

* Detectors (single-stage, dense head: SSD, RetinaNet, FCOS, ATSS, ...):
  :class:`DetectorEnd2End` - priors, box decoding, the per-class score
  threshold, ``nms_pre``, class-aware NMS (ONNX ``NonMaxSuppression``) and
  ``max_per_img`` of the config's ``test_cfg``; outputs ``dets`` (N, K, 5:
  x1, y1, x2, y2, score) in input-tensor pixels and ``labels`` (N, K), K =
  ``max_per_img``, best first, padded with rows of :data:`PAD_LABEL` /
  :data:`PAD_DET`.
* Segmentors: :class:`SegmentorEnd2End` - the logits resized to the input
  size and their argmax (sigmoid > threshold for one output channel);
  output ``seg_map`` (N, H, W) int64.
* Classifiers: :class:`ClassifierEnd2End` - ``logits`` (N, classes) and,
  optionally, ``scores`` (softmax, or sigmoid for multi-label heads).

The input is the data preprocessor's output (normalized, batched), as for the
raw (``mode='tensor'``) export; :class:`~mmdice.apis.DeployedModel` runs the
preprocessor and maps the outputs back to the original images.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: ``labels`` value of the padding rows of a detector's end-to-end output.
PAD_LABEL = -1
#: ``dets`` value (all five columns) of the padding rows.
PAD_DET = 0.0

#: Names of the end-to-end outputs of each task.
DETECTOR_OUTPUTS = ('dets', 'labels')
SEGMENTOR_OUTPUTS = ('seg_map', )
CLASSIFIER_OUTPUTS = ('logits', )
CLASSIFIER_SCORE_OUTPUTS = ('logits', 'scores')

#: The detectors the export supports, for error messages.
SUPPORTED_DETECTORS = (
    'single-stage detectors (mmdet SingleStageDetector: SSD, RetinaNet, FCOS, ATSS, ...) '
    "whose dense head predicts with mmdet's BaseDenseHead.predict_by_feat and test_cfg.nms "
    "type 'nms'")


@torch.library.custom_op('mmdice_deploy::nms_keep', mutates_args=())
def nms_keep(boxes: Tensor, scores: Tensor, iou_threshold: float, max_per_image: int) -> Tensor:
    """Non-maximum suppression of each image: ``boxes`` (N, M, 4) x1 y1 x2 y2,
    ``scores`` (N, M); candidates with score <= 0 are dropped, at most
    ``max_per_image`` (the best) are kept. Returns a float mask (N, M), 1 where kept.
    Exported as ONNX ``NonMaxSuppression`` + ``ScatterND``."""
    from torchvision.ops import nms
    keep = torch.zeros_like(scores)
    for image, (image_boxes, image_scores) in enumerate(zip(boxes, scores)):
        candidates = torch.nonzero(image_scores > 0).flatten()
        kept = nms(image_boxes[candidates], image_scores[candidates], iou_threshold)
        keep[image, candidates[kept[:max_per_image]]] = 1
    return keep


@nms_keep.register_fake
def _nms_keep_fake(boxes, scores, iou_threshold, max_per_image):
    return torch.empty_like(scores)


def onnx_translations() -> Dict:
    """{torch op: onnxscript function} of the end-to-end graphs' own ops, for
    :func:`~mmdice.apis.export_onnx`."""
    from onnxscript import opset18 as op

    def nms_keep_onnx(boxes, scores, iou_threshold: float, max_per_image: int):
        selected = op.NonMaxSuppression(
            boxes, op.Unsqueeze(scores, op.Constant(value_ints=[1])),
            op.Constant(value_ints=[max_per_image]), op.Constant(value_floats=[iou_threshold]),
            op.Constant(value_floats=[0.0]))
        # selected: (S, 3) rows of (image, class 0, box)
        image_and_box = op.Gather(selected, op.Constant(value_ints=[0, 2]), axis=1)
        ones = op.Expand(op.CastLike(op.Constant(value_float=1.0), scores),
                         op.Slice(op.Shape(selected), op.Constant(value_ints=[0]),
                                  op.Constant(value_ints=[1])))
        zeros = op.Mul(scores, op.CastLike(op.Constant(value_float=0.0), scores))
        return op.ScatterND(zeros, image_and_box, ones)

    return {torch.ops.mmdice_deploy.nms_keep.default: nms_keep_onnx}


def model_task(model: nn.Module) -> str:
    """'detector', 'segmentor' or 'classifier' of an OpenMMLab model (by its
    heads: ``bbox_head`` / ``rpn_head``, ``decode_head``, else a classifier)."""
    if hasattr(model, 'bbox_head') or hasattr(model, 'rpn_head') or hasattr(model, 'roi_head'):
        return 'detector'
    if hasattr(model, 'decode_head'):
        return 'segmentor'
    return 'classifier'


def unsupported_detector_reason(model: nn.Module) -> Optional[str]:
    """Why the detector ``model`` cannot be exported (a one-line message naming
    the detectors that can), or None when it can (its raw and end-to-end forms)."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    from mmdet.models.detectors import SingleStageDetector
    name = type(model).__name__
    if not isinstance(model, SingleStageDetector):
        return (f'{name} cannot be exported: the deployment tools export {SUPPORTED_DETECTORS}'
                f'; two-stage detectors (RPN + RoI head, e.g. Mask R-CNN) are not supported')
    head = model.bbox_head
    overridden = [method for method in ('predict_by_feat', '_predict_by_feat_single',
                                        '_bbox_post_process')
                  if getattr(type(head), method) is not getattr(BaseDenseHead, method)]
    if overridden:
        return (f'{name} with {type(head).__name__} cannot be exported: the head has its own '
                f'{overridden[0]}; the deployment tools export {SUPPORTED_DETECTORS}')
    nms_type = (head.test_cfg or {}).get('nms', {}).get('type', 'nms')
    if nms_type != 'nms':
        return (f'{name}: test_cfg.nms.type {nms_type!r} cannot be exported; the deployment '
                f"tools export {SUPPORTED_DETECTORS}")
    return None


def detector_settings(head: nn.Module) -> Dict:
    """The ``test_cfg`` values the end-to-end detector bakes in."""
    cfg = head.test_cfg
    return dict(score_thr=float(cfg.get('score_thr', 0)), nms_pre=int(cfg.get('nms_pre', -1)),
                iou_threshold=float(cfg.nms.get('iou_threshold', 0.5)),
                class_agnostic=bool(cfg.nms.get('class_agnostic', False)),
                min_bbox_size=float(cfg.get('min_bbox_size', -1)),
                max_per_img=int(cfg.max_per_img))


def _levels_flat(maps: Sequence[Tensor], channels: int) -> List[Tensor]:
    """(N, A * channels, H, W) per level -> (N, H * W * A, channels), mmdet's prior order."""
    return [level.permute(0, 2, 3, 1).reshape(level.shape[0], -1, channels) for level in maps]


class End2EndBase(nn.Module):
    """The network part of the end-to-end wrappers: ``model``'s heads and
    settings, and the module computing its ``mode='tensor'`` outputs from the
    image tensor: ``network`` (e.g. a fine-tuned fake-quantized copy of
    ``TensorModeWrapper(model)``, :mod:`mmdice.apis.int8_qat`), by default
    ``model`` itself."""

    def __init__(self, model: nn.Module, network: Optional[nn.Module] = None):
        super().__init__()
        self.model = model
        self.network = network

    def network_outputs(self, x: Tensor):
        """The raw outputs that the post-processing takes."""
        if self.network is None:
            return self.model(x, mode='tensor')
        return self.network(x)


class DetectorEnd2End(End2EndBase):
    """A single-stage mmdet detector from image tensor to ``dets`` (N, K, 5) and
    ``labels`` (N, K), as ``model.predict(..., rescale=False)`` computes them
    (boxes in input pixels, clipped to the input).

    Per level, the ``nms_pre`` best (prior, class) scores are taken (the
    candidates at most ``score_thr`` dropped), boxes decoded by the head's
    ``bbox_coder``, boxes of ``min_bbox_size`` or less dropped, score factors
    (FCOS centerness) applied, then class-aware NMS and the ``max_per_img``
    best, as mmdet's ``BaseDenseHead.predict_by_feat``. Rows after the last
    detection hold :data:`PAD_DET` and label :data:`PAD_LABEL`.
    """

    def __init__(self, model: nn.Module, network: Optional[nn.Module] = None):
        reason = unsupported_detector_reason(model)
        if reason is not None:
            raise ValueError(reason)
        super().__init__(model, network)
        self.head = model.bbox_head
        self.settings = detector_settings(self.head)

    def forward(self, x: Tensor):
        head, settings = self.head, self.settings
        outputs = self.network_outputs(x)
        cls_scores, bbox_preds = outputs[0], outputs[1]
        factors = outputs[2] if len(outputs) > 2 and outputs[2][0] is not None else None
        num_images, num_classes = x.shape[0], head.num_classes
        priors = head.prior_generator.grid_priors([level.shape[-2:] for level in cls_scores],
                                                  dtype=x.dtype, device=x.device)
        flat_scores = _levels_flat(cls_scores, head.cls_out_channels)
        flat_deltas = _levels_flat(bbox_preds, head.bbox_coder.encode_size)
        flat_factors = _levels_flat(factors, 1) if factors is not None else [None] * len(priors)
        scores, labels, deltas, level_priors, score_factors = [], [], [], [], []
        for level_scores, level_deltas, level_factors, level_priors_ in zip(
                flat_scores, flat_deltas, flat_factors, priors):
            if head.use_sigmoid_cls:
                level_scores = level_scores.sigmoid()
            else:  # background is the last class (mmdet >= 2.0)
                level_scores = level_scores.softmax(-1)[..., :-1]
            pairs = level_scores.reshape(num_images, -1)
            count = pairs.shape[1]
            top, index = pairs.topk(count if settings['nms_pre'] < 0 else
                                    min(settings['nms_pre'], count), dim=1)
            prior_index = torch.div(index, num_classes, rounding_mode='floor')
            scores.append(top)
            labels.append(index - prior_index * num_classes)
            deltas.append(torch.gather(
                level_deltas, 1,
                prior_index.unsqueeze(-1).expand(-1, -1, level_deltas.shape[-1])))
            level_priors.append(level_priors_[prior_index])
            if level_factors is not None:
                score_factors.append(torch.gather(level_factors[..., 0].sigmoid(), 1,
                                                  prior_index))
        scores, labels = torch.cat(scores, 1), torch.cat(labels, 1)
        deltas, level_priors = torch.cat(deltas, 1), torch.cat(level_priors, 1)
        count = scores.shape[1]
        # decoded unclipped and clipped here: mmdet's clipping under an ONNX export
        # imports mmdet.core, which mmdet 3 no longer has
        boxes = head.bbox_coder.decode(level_priors.reshape(-1, level_priors.shape[-1]),
                                       deltas.reshape(-1, deltas.shape[-1]))
        boxes = boxes.reshape(num_images, count, 4)
        if getattr(head.bbox_coder, 'clip_border', True):
            xs = boxes[..., 0::2].clamp(0, x.shape[3])
            ys = boxes[..., 1::2].clamp(0, x.shape[2])
            boxes = torch.stack([xs[..., 0], ys[..., 0], xs[..., 1], ys[..., 1]], -1)
        valid = scores > settings['score_thr']
        if score_factors:
            scores = scores * torch.cat(score_factors, 1)
        if settings['min_bbox_size'] >= 0:
            size = settings['min_bbox_size']
            valid = valid & (boxes[..., 2] - boxes[..., 0] > size) & (
                boxes[..., 3] - boxes[..., 1] > size)
        scores = torch.where(valid, scores, torch.zeros_like(scores))
        nms_boxes = boxes
        if not settings['class_agnostic']:  # mmcv's batched_nms: one offset per class
            offsets = labels.to(boxes.dtype) * (boxes.max() + 1)
            nms_boxes = boxes + offsets.unsqueeze(-1)
        keep = nms_keep(nms_boxes, scores, settings['iou_threshold'], settings['max_per_img'])
        kept_scores = scores * keep
        best, order = kept_scores.topk(min(settings['max_per_img'], count), dim=1)
        dets = torch.cat([torch.gather(boxes, 1, order.unsqueeze(-1).expand(-1, -1, 4)),
                          best.unsqueeze(-1)], -1)
        labels = torch.gather(labels, 1, order)
        padding = best <= 0
        dets = torch.where(padding.unsqueeze(-1), torch.full_like(dets, PAD_DET), dets)
        labels = torch.where(padding, torch.full_like(labels, PAD_LABEL), labels)
        return dets, labels


class SegmentorEnd2End(End2EndBase):
    """An mmseg segmentor from image tensor to ``seg_map`` (N, H, W) int64 at
    the input size: the decode head's logits resized bilinearly (the head's
    ``align_corners``) and their argmax, or sigmoid > ``threshold`` for a head
    with one output channel, as mmseg's ``predict`` (whole-image mode)."""

    def __init__(self, model: nn.Module, network: Optional[nn.Module] = None):
        mode = (model.test_cfg or {}).get('mode', 'whole')
        if mode != 'whole':
            raise ValueError(f"model.test_cfg.mode={mode!r} cannot be exported end to end (it "
                             "runs in Python); set model.test_cfg.mode='whole' or export --raw")
        super().__init__(model, network)

    def forward(self, x: Tensor) -> Tensor:
        head = self.model.decode_head
        logits = F.interpolate(self.network_outputs(x), size=x.shape[2:], mode='bilinear',
                               align_corners=head.align_corners)
        if logits.shape[1] == 1:
            return (logits.sigmoid() > head.threshold).squeeze(1).long()
        return logits.argmax(dim=1)


class ClassifierEnd2End(End2EndBase):
    """An mmpretrain classifier from image tensor to ``logits`` (N, classes)
    and, with ``scores=True``, ``scores``: softmax (sigmoid for multi-label
    heads, as their ``predict``)."""

    def __init__(self, model: nn.Module, scores: bool = False,
                 network: Optional[nn.Module] = None):
        super().__init__(model, network)
        self.scores = scores

    def forward(self, x: Tensor):
        logits = self.network_outputs(x)
        if isinstance(logits, (tuple, list)):
            logits = logits[-1]
        if not self.scores:
            return logits
        from mmpretrain.models.heads import MultiLabelClsHead
        multi_label = isinstance(getattr(self.model, 'head', None), MultiLabelClsHead)
        return logits, (logits.sigmoid() if multi_label else logits.softmax(-1))


def end2end_module(model: nn.Module, scores: bool = False,
                   network: Optional[nn.Module] = None) -> nn.Module:
    """The end-to-end wrapper of ``model`` for its task (:func:`model_task`);
    ``scores``: a classifier also outputs ``scores``; ``network``: computes the
    raw outputs instead of ``model`` (:class:`End2EndBase`). ValueError (one
    line) for a model that cannot be exported end to end."""
    task = model_task(model)
    if task == 'detector':
        return DetectorEnd2End(model, network).eval()
    if task == 'segmentor':
        return SegmentorEnd2End(model, network).eval()
    return ClassifierEnd2End(model, scores, network).eval()


def end2end_output_names(model: nn.Module, scores: bool = False) -> List[str]:
    """ONNX names of the outputs of :func:`end2end_module` of ``model``."""
    task = model_task(model)
    if task == 'detector':
        return list(DETECTOR_OUTPUTS)
    if task == 'segmentor':
        return list(SEGMENTOR_OUTPUTS)
    return list(CLASSIFIER_SCORE_OUTPUTS if scores else CLASSIFIER_OUTPUTS)


def raw_output_names(model: nn.Module, outputs) -> List[str]:
    """ONNX names of the ``mode='tensor'`` ``outputs`` of ``model``: ``logits``
    (classifiers), ``seg_logits`` (segmentors), and per feature level
    ``cls_score_<i>``, ``bbox_pred_<i>`` and, for heads with a third output
    (FCOS, ATSS), ``centerness_<i>`` (``score_factor_<i>`` for a head without a
    centerness branch) for detectors."""
    from .onnx_export import flat_outputs
    tensors = flat_outputs(outputs)
    task = model_task(model)
    if task == 'segmentor' and len(tensors) == 1:
        return ['seg_logits']
    if task == 'detector':
        third = 'centerness' if any('centerness' in name for name, _ in
                                    model.bbox_head.named_children()) else 'score_factor'
        groups = ['cls_score', 'bbox_pred', third]
        if not all(isinstance(group, (tuple, list)) for group in outputs) or len(outputs) > 3:
            raise ValueError(f'{type(model.bbox_head).__name__} returns '
                             f'{len(tensors)} tensors not grouped as (cls_scores, bbox_preds'
                             '[, score factors]) per level, which the export names')
        return [f'{groups[index]}_{level}' for index, group in enumerate(outputs)
                for level in range(len(group))]
    return ['logits'] if len(tensors) == 1 else [f'logits_{i}' for i in range(len(tensors))]


def deploy_module(model: nn.Module, example: Tensor, raw: bool = False,
                  scores: bool = False) -> Tuple[nn.Module, List[str]]:
    """(the module that the deployment tools export, its output names): the
    end-to-end graph of ``model`` (:func:`end2end_module`), or with ``raw`` its
    ``mode='tensor'`` forward (:class:`~mmdice.apis.TensorModeWrapper`,
    :func:`raw_output_names`). ValueError (one line) for a model that cannot
    be exported, e.g. a two-stage detector."""
    from .model import TensorModeWrapper
    if model_task(model) == 'detector':
        reason = unsupported_detector_reason(model)
        if reason is not None:
            raise ValueError(reason)
    if not raw:
        return end2end_module(model, scores), end2end_output_names(model, scores)
    module = TensorModeWrapper(model).eval()
    with torch.no_grad():
        return module, raw_output_names(model, module(example))


def describe_end2end(module: nn.Module) -> str:
    """One line of what the end-to-end graph bakes in, printed by the tools."""
    if isinstance(module, DetectorEnd2End):
        settings = ', '.join(f'{key}={value}' for key, value in module.settings.items())
        return (f'end-to-end detector: test_cfg {settings}; outputs dets (N, '
                f'{module.settings["max_per_img"]}, 5: x1 y1 x2 y2 score, input pixels) and '
                f'labels (N, {module.settings["max_per_img"]}); padding rows: dets {PAD_DET}, '
                f'label {PAD_LABEL}')
    if isinstance(module, SegmentorEnd2End):
        return 'end-to-end segmentor: output seg_map (N, H, W) int64, class index per pixel'
    outputs = 'logits and scores' if module.scores else 'logits'
    return f'end-to-end classifier: outputs {outputs} (N, classes)'


def match_detections(actual_dets: np.ndarray, actual_labels: np.ndarray,
                     expected_dets: np.ndarray, expected_labels: np.ndarray,
                     tolerance: float = 1e-3) -> Tuple[int, int, float]:
    """Pair the detections of one image: ``*_dets`` (K, 5) x1 y1 x2 y2 score,
    ``*_labels`` (K, ), rows labelled :data:`PAD_LABEL` ignored. Each expected
    detection (best score first) takes the unpaired actual one of its label
    whose boxes and score differ least, if that difference is at most
    ``tolerance`` times the largest expected box coordinate (at least 1).
    Returns (pairs, detections left unpaired on either side, largest relative
    difference of a pair)."""
    actual_rows = np.flatnonzero(actual_labels != PAD_LABEL)
    expected_rows = np.flatnonzero(expected_labels != PAD_LABEL)
    scale = max(float(np.abs(expected_dets[expected_rows, :4]).max(initial=0.0)), 1.0)
    free = set(actual_rows.tolist())
    pairs, worst = 0, 0.0
    for row in expected_rows[np.argsort(-expected_dets[expected_rows, 4], kind='stable')]:
        candidates = [other for other in free if actual_labels[other] == expected_labels[row]]
        if not candidates:
            continue
        gaps = [float(np.abs(actual_dets[other] - expected_dets[row]).max()) / scale
                for other in candidates]
        best = int(np.argmin(gaps))
        if gaps[best] <= tolerance:
            free.discard(candidates[best])
            pairs += 1
            worst = max(worst, gaps[best])
    return pairs, max(len(actual_rows), len(expected_rows)) - pairs, worst


def compare_end2end(actual: Sequence[np.ndarray], module: nn.Module, example: Tensor,
                    tolerance: float = 1e-3) -> Tuple[float, float]:
    """A runtime's ``actual`` outputs of an end-to-end ``module`` on
    ``example`` against PyTorch's: (fraction of predictions that differ, largest
    relative difference of the agreeing ones). Detectors: detections left
    unpaired by :func:`match_detections` (per image, over all detections) and
    the largest box/score difference of a pair; segmentors: pixels of another
    class, 0; classifiers: images of another top-1 class, and the largest
    logit difference relative to the largest PyTorch logit."""
    with torch.no_grad():
        expected = module(example)
    expected = [tensor.numpy() for tensor in (expected if isinstance(expected, tuple)
                                              else (expected, ))]
    if len(actual) != len(expected):
        raise ValueError(f'the model file has {len(actual)} outputs, the end-to-end '
                         f'{type(module).__name__} {len(expected)}')
    if isinstance(module, DetectorEnd2End):
        unpaired = total = 0
        worst = 0.0
        for image in range(len(expected[0])):
            pairs, left, error = match_detections(actual[0][image], actual[1][image],
                                                  expected[0][image], expected[1][image],
                                                  tolerance)
            unpaired, total, worst = unpaired + left, total + pairs + left, max(worst, error)
        return unpaired / max(total, 1), worst
    if isinstance(module, SegmentorEnd2End):
        return float(np.mean(actual[0] != expected[0])), 0.0
    logits = expected[0]
    differ = float(np.mean(actual[0].argmax(-1) != logits.argmax(-1)))
    return differ, float(np.abs(actual[0] - logits).max() / max(np.abs(logits).max(), 1e-12))
