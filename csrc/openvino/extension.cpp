// The OpenVINO extension library of mmdice: its operations (DiCEFuse,
// ShuffleGatedConcat), and their ONNX
// frontend mappings from the custom domain "mmdice" (mmdice/ops/openvino.py
// builds and loads it).
#include <openvino/core/extension.hpp>
#include <openvino/core/op_extension.hpp>
#include <openvino/frontend/onnx/extension/op.hpp>

#include "dice_fuse_op.hpp"
#include "shuffle_gated_concat_op.hpp"

OPENVINO_CREATE_EXTENSIONS(std::vector<ov::Extension::Ptr>(
    {std::make_shared<ov::OpExtension<mmdice::openvino::DiCEFuse>>(),
     std::make_shared<ov::frontend::onnx::OpExtension<mmdice::openvino::DiCEFuse>>("DiCEFuse",
                                                                                     "mmdice"),
     std::make_shared<ov::OpExtension<mmdice::openvino::ShuffleGatedConcat>>(),
     std::make_shared<ov::frontend::onnx::OpExtension<mmdice::openvino::ShuffleGatedConcat>>(
         "ShuffleGatedConcat", "mmdice")}));
