"""High-level APIs of mmdice, used by the tools and the benchmarks: build a
model from its config (optionally in the deploy form), re-parameterize a
checkpoint, convert the authors' EdgeNets checkpoints, export to ONNX and OpenVINO
(raw or end to end), and run the exports behind the codebases' interfaces."""
from .deploy import deploy_cfg_options, reparameterize_checkpoint
from .deployed import (BACKENDS, BackendError, DeployedModel, Runtime, inference_deployed,
                       test_pipeline)
from .edgenets import convert_edgenets_checkpoint, load_edgenets_state_dict
from .end2end import (PAD_DET, PAD_LABEL, compare_end2end, deploy_module, describe_end2end,
                      match_detections, unsupported_detector_reason)
from .model import TensorModeWrapper, build_model_from_config
from .onnx_export import (FIXED_SPATIAL_REASON, OPSET, check_onnx, export_onnx, flat_outputs,
                          has_fixed_spatial_size, onnx_session)
from .openvino_export import (PRECISIONS, check_openvino, compile_openvino, count_dice_fuse,
                              export_openvino)

__all__ = [
    'build_model_from_config', 'TensorModeWrapper', 'deploy_cfg_options',
    'reparameterize_checkpoint', 'convert_edgenets_checkpoint', 'load_edgenets_state_dict',
    'FIXED_SPATIAL_REASON', 'OPSET', 'check_onnx', 'export_onnx', 'flat_outputs',
    'has_fixed_spatial_size', 'onnx_session', 'PRECISIONS', 'check_openvino',
    'compile_openvino', 'count_dice_fuse', 'export_openvino', 'PAD_DET', 'PAD_LABEL',
    'compare_end2end', 'deploy_module', 'describe_end2end', 'match_detections',
    'unsupported_detector_reason', 'BACKENDS', 'BackendError', 'DeployedModel', 'Runtime',
    'inference_deployed', 'test_pipeline'
]
