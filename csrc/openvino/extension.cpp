// The OpenVINO extension library of mmdice: its operations (DiCEFuse,
// ShuffleGatedConcat) and their conversions from the ONNX custom domain
// "mmdice", whose optional attributes take the operations' defaults
// (mmdice/ops/openvino.py builds and loads it).
#include <openvino/core/extension.hpp>
#include <openvino/core/op_extension.hpp>
#include <openvino/frontend/onnx/extension/conversion.hpp>

#include <string>
#include <vector>

#include "dice_fuse_op.hpp"
#include "shuffle_gated_concat_op.hpp"

namespace {

ov::OutputVector node_inputs(const ov::frontend::NodeContext& node) {
  ov::OutputVector inputs;
  for (size_t i = 0; i < node.get_input_size(); ++i) inputs.push_back(node.get_input(i));
  return inputs;
}

ov::OutputVector convert_dice_fuse(const ov::frontend::NodeContext& node) {
  return std::make_shared<mmdice::openvino::DiCEFuse>(
             node_inputs(node), node.get_attribute<std::vector<int64_t>>("dilation"),
             node.get_attribute<std::string>("layout", "NCHW"),
             node.get_attribute<int64_t>("with_mean", 0),
             node.get_attribute<int64_t>("input_pool", 0))
      ->outputs();
}

ov::OutputVector convert_shuffle_gated_concat(const ov::frontend::NodeContext& node) {
  return std::make_shared<mmdice::openvino::ShuffleGatedConcat>(
             node_inputs(node), node.get_attribute<int64_t>("num_outputs", 1))
      ->outputs();
}

}  // namespace

OPENVINO_CREATE_EXTENSIONS(std::vector<ov::Extension::Ptr>(
    {std::make_shared<ov::OpExtension<mmdice::openvino::DiCEFuse>>(),
     std::make_shared<ov::OpExtension<mmdice::openvino::ShuffleGatedConcat>>(),
     std::make_shared<ov::frontend::onnx::ConversionExtension>("DiCEFuse", "mmdice",
                                                                convert_dice_fuse),
     std::make_shared<ov::frontend::onnx::ConversionExtension>(
         "ShuffleGatedConcat", "mmdice", convert_shuffle_gated_concat)}));
