"""Exported models run by onnxruntime or OpenVINO behind the codebases' own
interfaces: :class:`DeployedModel` (an mmengine ``BaseModel`` whose
``predict`` returns mmdet / mmseg / mmpretrain data samples, so the configs'
test dataloaders, evaluators and visualizers run on it) and
:func:`inference_deployed` for single images."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.model import BaseModel

from mmdice.registry import MODELS
from mmdice.utils.tool_inputs import InputFileError, load_config
from .end2end import (CLASSIFIER_OUTPUTS, CLASSIFIER_SCORE_OUTPUTS, DETECTOR_OUTPUTS,
                      PAD_LABEL, SEGMENTOR_OUTPUTS)

#: Runtimes that :class:`DeployedModel` runs model files with.
BACKENDS = ('onnxruntime', 'openvino')

#: The end-to-end outputs of each task.
TASK_OUTPUTS = {
    'detector': [list(DETECTOR_OUTPUTS)],
    'segmentor': [list(SEGMENTOR_OUTPUTS)],
    'classifier': [list(CLASSIFIER_OUTPUTS), list(CLASSIFIER_SCORE_OUTPUTS)],
}


class BackendError(ValueError):
    """A model file that a runtime cannot run (runtime missing, extension
    missing, file of another form); the message is one line saying why."""


def config_task(model_cfg: Dict) -> str:
    """'detector', 'segmentor' or 'classifier' of a config's ``model``."""
    if any(key in model_cfg for key in ('bbox_head', 'rpn_head', 'roi_head')):
        return 'detector'
    if 'decode_head' in model_cfg:
        return 'segmentor'
    return 'classifier'


def outputs_task(names: Sequence[str]) -> Optional[str]:
    """The task whose end-to-end export has the outputs ``names``, or None."""
    for task, forms in TASK_OUTPUTS.items():
        if list(names) in forms:
            return task
    return None


class Runtime:
    """A model file loaded into onnxruntime (``.onnx``) or OpenVINO (``.xml`` IR
    or ``.onnx``, with the mmdice extension): ``runtime(array)`` -> list of
    arrays, in the order of ``output_names``; ``input_shape`` has None for
    dynamic axes. ``library``: the mmdice OpenVINO extension (default: built or
    found by :func:`mmdice.ops.openvino.build_openvino_extension`);
    ``precision``: OpenVINO's inference precision (default: the IR's, else f32).
    BackendError (one line) when the runtime cannot run the file."""

    def __init__(self, path: str, backend: str = 'onnxruntime', library: Optional[str] = None,
                 threads: int = 0, precision: Optional[str] = None):
        if backend not in BACKENDS:
            raise BackendError(f'backend must be one of {BACKENDS}, got {backend!r}')
        if not osp.isfile(path):
            raise InputFileError(f'model file {path} does not exist')
        self.backend = backend
        if backend == 'onnxruntime':
            self._load_onnxruntime(path, threads)
        else:
            self._load_openvino(path, library, threads, precision)

    def _load_onnxruntime(self, path, threads):
        if not path.endswith('.onnx'):
            raise BackendError(f'backend onnxruntime runs .onnx files, got {path}; run an '
                               'OpenVINO IR (.xml) with backend openvino')
        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            raise BackendError('backend onnxruntime needs the onnxruntime package (pip install '
                               f'onnxruntime): {error}') from error
        from .onnx_export import onnx_session
        try:
            session = onnx_session(path, threads)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise BackendError(f'onnxruntime cannot load {path}: '
                               f'{str(error).strip().splitlines()[0]}') from error
        self.output_names = [value.name for value in session.get_outputs()]
        self.input_shape = [dim if isinstance(dim, int) else None
                            for dim in session.get_inputs()[0].shape]
        input_name = session.get_inputs()[0].name
        self._run = lambda array: session.run(None, {input_name: array})

    def _load_openvino(self, path, library, threads, precision):
        if not path.endswith(('.xml', '.onnx')):
            raise BackendError(f'backend openvino runs OpenVINO IR (.xml) or .onnx files, '
                               f'got {path}')
        try:
            import openvino  # noqa: F401
        except ImportError as error:
            raise BackendError('backend openvino needs the openvino package (pip install '
                               f'openvino): {error}') from error
        from mmdice.ops.openvino import OpenVINOExtensionError
        from .openvino_export import compile_openvino
        try:
            compiled = compile_openvino(path, precision, threads, library)
        except OpenVINOExtensionError as error:
            raise BackendError(str(error).strip().splitlines()[0]) from error
        except Exception as error:  # noqa: BLE001 - OpenVINO raises its own types
            raise BackendError(f'OpenVINO cannot load {path}: '
                               f'{str(error).strip().splitlines()[0]}') from error
        self.output_names = [output.get_any_name() for output in compiled.outputs]
        self.input_shape = [dim.get_length() if dim.is_static else None
                            for dim in compiled.inputs[0].get_partial_shape()]
        self._run = lambda array: list(compiled(array).values())

    def __call__(self, array: np.ndarray) -> List[np.ndarray]:
        fixed = [(axis, size) for axis, size in enumerate(self.input_shape)
                 if size is not None and axis > 0]
        wrong = [(axis, size) for axis, size in fixed if array.shape[axis] != size]
        if len(array.shape) != len(self.input_shape) or wrong:
            raise ValueError(f'the model file takes inputs of shape {self.input_shape} (None: '
                             f'any size), got {list(array.shape)}; resize the images to it in '
                             'the test pipeline')
        return list(self._run(np.ascontiguousarray(array, dtype=np.float32)))


@MODELS.register_module()
class DeployedModel(BaseModel):
    """An end-to-end export (:mod:`mmdice.apis.end2end`, the default form of
    tools/deployment/pytorch2onnx.py and pytorch2openvino.py) run by
    ``backend`` ('onnxruntime' or 'openvino'), with ``config``'s data
    preprocessor in front, answering as the codebase's model does:

    * detectors: ``DetDataSample.pred_instances`` (bboxes (K, 4) in
      original-image pixels: clipped to ``img_shape``, divided by
      ``scale_factor``; scores; labels), as mmdet's ``predict(rescale=True)``;
    * segmentors: ``SegDataSample.pred_sem_seg`` (1, H, W) at the original
      size (padding removed, nearest-neighbour resized from the input size);
    * classifiers: mmpretrain ``DataSample`` with ``pred_score`` and
      ``pred_label``, by the config's head (softmax, or the multi-label rule).

    Args:
        path: the model file (.onnx; or OpenVINO IR .xml for 'openvino').
        config: the model's config (path or Config); its ``model`` tells the
            task and gives the data preprocessor.
        backend: one of :data:`BACKENDS`.
        library: mmdice OpenVINO extension library (backend 'openvino').
        threads: the runtime's intra-op threads (0: its default).
        data_preprocessor: overrides ``config.model.data_preprocessor``.

    Raises BackendError when the runtime cannot run the file or the file is
    not the end-to-end export of a model of ``config``'s task.
    """

    def __init__(self, path: str, config: Union[str, os.PathLike, Config], backend: str = 'onnxruntime',
                 library: Optional[str] = None, threads: int = 0,
                 data_preprocessor: Optional[Dict] = None):
        from mmengine.registry import DefaultScope
        cfg = load_config(os.fspath(config)) if isinstance(config, (str, os.PathLike)) else config
        source = os.fspath(config) if isinstance(config, (str, os.PathLike)) else 'the config'
        if data_preprocessor is None:
            data_preprocessor = cfg.model.get('data_preprocessor', cfg.get('data_preprocessor'))
        scope = cfg.get('default_scope', 'mmpretrain')
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(data_preprocessor=data_preprocessor)
            self.task = config_task(cfg.model)
            self.runtime = Runtime(os.fspath(path), backend, library, threads)
            names = self.runtime.output_names
            if names not in TASK_OUTPUTS[self.task]:
                found = outputs_task(names)
                what = (f'the end-to-end export of a {found}' if found else
                        'not an end-to-end export (a --raw export?)')
                raise BackendError(
                    f'{path} has outputs {names}: {what}; {source} is a {self.task}, whose '
                    f'end-to-end export has outputs {TASK_OUTPUTS[self.task][0]} (export it '
                    'with tools/deployment/pytorch2onnx.py without --raw)')
            self.cls_head = None
            if self.task == 'classifier' and cfg.model.get('head') is not None:
                from mmengine.registry import MODELS as ROOT_MODELS
                self.cls_head = ROOT_MODELS.build(cfg.model.head)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'predict'):
        """``mode='predict'``: data samples with predictions; ``'tensor'``: the
        runtime's outputs as tensors. Deployed models do not train ('loss')."""
        outputs = [torch.from_numpy(array) for array in self.runtime(inputs.cpu().numpy())]
        if mode == 'tensor':
            return outputs
        if mode != 'predict':
            raise ValueError(f"a DeployedModel only predicts: mode must be 'predict' or "
                             f"'tensor', got {mode!r}")
        return getattr(self, f'_{self.task}_samples')(outputs, inputs, data_samples)

    def _detector_samples(self, outputs, inputs, data_samples):
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        dets, labels = outputs
        if data_samples is None:
            data_samples = [DetDataSample(metainfo=dict(img_shape=tuple(inputs.shape[2:])))
                            for _ in range(len(dets))]
        for sample, image_dets, image_labels in zip(data_samples, dets, labels):
            keep = image_labels != PAD_LABEL
            boxes = image_dets[keep, :4].clone()
            height, width = sample.metainfo.get('img_shape', inputs.shape[2:])[:2]
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
            if 'scale_factor' in sample.metainfo:
                boxes /= boxes.new_tensor(sample.metainfo['scale_factor']).repeat(2)
            sample.pred_instances = InstanceData(bboxes=boxes, scores=image_dets[keep, 4],
                                                 labels=image_labels[keep])
        return data_samples

    def _segmentor_samples(self, outputs, inputs, data_samples):
        import torch.nn.functional as F
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        seg_map = outputs[0]
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(len(seg_map))]
        for sample, image_map in zip(data_samples, seg_map):
            meta = sample.metainfo
            left, right, top, bottom = meta.get('img_padding_size',
                                                meta.get('padding_size', [0] * 4))
            height, width = image_map.shape
            image_map = image_map[top:height - bottom, left:width - right]
            if 'ori_shape' in meta and tuple(image_map.shape) != tuple(meta['ori_shape'][:2]):
                image_map = F.interpolate(image_map[None, None].float(),
                                          size=tuple(meta['ori_shape'][:2]),
                                          mode='nearest')[0, 0].long()
            sample.pred_sem_seg = PixelData(data=image_map[None])
        return data_samples

    def _classifier_samples(self, outputs, inputs, data_samples):
        if self.cls_head is None:
            raise ValueError('the config of this classifier has no model.head to turn logits '
                             'into predictions')
        return self.cls_head._get_predictions(outputs[0], data_samples)

    def inference(self, images: Union[str, np.ndarray, Sequence[Union[str, np.ndarray]]],
                  pipeline: Sequence[Dict]) -> list:
        """Predictions (data samples) for image files or BGR uint8 arrays, prepared
        by the test ``pipeline`` (its loading and annotation steps skipped).
        InputFileError naming an image that cannot be read."""
        from mmcv import imread
        from mmengine.dataset import Compose, pseudo_collate
        single = isinstance(images, (str, np.ndarray))
        steps = Compose([step for step in pipeline
                         if not step['type'].split('.')[-1].startswith(('LoadImage',
                                                                        'LoadAnnotations'))])
        batch = []
        for image in ([images] if single else images):
            path = None
            if isinstance(image, str):
                path = image
                if not osp.isfile(path):
                    raise InputFileError(f'image {path} does not exist')
                try:
                    image = imread(path)
                except Exception as error:  # noqa: BLE001 - decoders raise many types
                    raise InputFileError(f'cannot read image {path}: {error}') from error
                if image is None:
                    raise InputFileError(f'cannot read image {path}: not an image file '
                                         '(OpenCV cannot decode it)')
            shape = image.shape[:2]
            batch.append(steps(dict(img=image, img_path=path, img_shape=shape, ori_shape=shape)))
        with torch.no_grad():
            samples = self.test_step(pseudo_collate(batch))
        return samples[0] if single else samples


def test_pipeline(cfg: Config) -> List[Dict]:
    """The config's test pipeline (``test_dataloader.dataset.pipeline``, else
    ``test_pipeline``)."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    pipeline = dataset.get('pipeline', cfg.get('test_pipeline'))
    if pipeline is None:
        raise ValueError('the config has no test pipeline (test_dataloader.dataset.pipeline '
                         'or test_pipeline) to prepare images with')
    return list(pipeline)


def inference_deployed(path: str, config: Union[str, os.PathLike, Config],
                       images: Union[str, np.ndarray, Sequence[Union[str, np.ndarray]]],
                       backend: str = 'onnxruntime', library: Optional[str] = None):
    """Run the end-to-end export ``path`` of ``config``'s model on image files
    or BGR arrays with ``backend``: a data sample (a list for a list of images)
    as the codebase's inference API returns (:class:`DeployedModel`)."""
    cfg = load_config(os.fspath(config)) if isinstance(config, (str, os.PathLike)) else config
    model = DeployedModel(path, cfg, backend, library)
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        return model.inference(images, test_pipeline(cfg))
