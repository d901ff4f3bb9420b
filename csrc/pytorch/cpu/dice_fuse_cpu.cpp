// CPU kernels of the fused DiCE op (maths in csrc/common/dice_fuse_common.h).
//
// At kernel sizes 3 and 5 the op runs the row kernel shared with the OpenVINO
// node (csrc/common/cpu/dice_fuse_cpu_rows.h). Other kernel sizes run the slab
// kernel below: the fused DimConv kernel itself (dim_conv_forward_cpu) on
// cache-sized slabs of channels of one image, a slab [c0, c1) convolved
// together with the `halo` channels on either side that its height- and
// width-wise taps reach, into a scratch (1, 3 * slab, H, W) tensor that stays
// in L2, and the epilogue (csrc/common/cpu/dice_fuse_cpu_epilogue.h) turns the
// 3 * (c1 - c0) inner planes into the C fused output channels at once.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../common/cpu/dice_fuse_cpu_epilogue.h"
#include "../../common/cpu/dice_fuse_cpu_rows.h"
#include "../../common/cpu/transpose_tiles.h"
#include "../dice_fuse.h"
#include "cpu_accumulate.h"

namespace mmdice {

namespace {

// Elements of one DimConv branch per slab: 3 branches x 32768 float32 values
// (384 KiB) fit the 2 MiB L2 of a current x86 core with room for the input.
constexpr int64_t kSlabElements = 32768;

// The coefficients converted once to the accumulation type.
template <typename T>
class ParamsBuffer {
 public:
  template <typename scalar_t>
  explicit ParamsBuffer(const DiceFuseTensors& t, scalar_t /*tag*/) {
    for (const at::Tensor* tensor : {&t.branch_scale, &t.branch_bias, &t.branch_slope,
                                     &t.fuse_weight, &t.fuse_bias, &t.out_slope}) {
      const scalar_t* data = tensor->data_ptr<scalar_t>();
      storage_.emplace_back(data, data + tensor->numel());
    }
  }

  DiceFuseParams<T> params() const {
    return {storage_[0].data(), storage_[1].data(), storage_[2].data(),
            storage_[3].data(), storage_[4].data(), storage_[5].data()};
  }

 private:
  std::vector<std::vector<T>> storage_;
};

// The epilogue of one plane (dice_fuse_cpu_epilogue.h); one worker per dtype
// (see cpu_kernel_utils.h).
#define DICE_FUSE_DEFINE_WORKER(scalar_t)                                                 \
  MMDICE_CPU_CLONES void fuse_plane(const scalar_t* depth, const scalar_t* height,       \
                                    const scalar_t* width, int64_t plane,                \
                                    const DiceFuseChannel<at::opmath_type<scalar_t>>& ch, \
                                    scalar_t* out) {                                     \
    fuse_plane_impl(depth, height, width, plane, ch, out);                               \
  }
MMDICE_CPU_FLOATING_TYPES_AND_BFLOAT16(DICE_FUSE_DEFINE_WORKER)
#undef DICE_FUSE_DEFINE_WORKER

// Output rows [begin, end) of the row kernel (dice_fuse_cpu_rows.h); one worker per dtype.
#define DICE_FUSE_DEFINE_ROWS_WORKER(scalar_t)                                              \
  MMDICE_CPU_CLONES void fuse_rows(const dice_fuse_rows::Problem<scalar_t>& problem,       \
                                   int64_t begin, int64_t end,                             \
                                   at::opmath_type<scalar_t>* scratch) {                   \
    dice_fuse_rows::run_rows_impl(problem, begin, end, scratch);                           \
  }
MMDICE_CPU_FLOATING_TYPES_AND_BFLOAT16(DICE_FUSE_DEFINE_ROWS_WORKER)
#undef DICE_FUSE_DEFINE_ROWS_WORKER

// The fused op's operands as both kernels take them.
struct FuseOperands {
  const at::Tensor& input;
  const at::Tensor& weight_depth;
  const at::Tensor& weight_height;
  const at::Tensor& weight_width;
  const DimConvGeometry& geometry;
  const DiceFuseTensors& tensors;
  bool input_channels_last;
  bool output_channels_last;
  at::Tensor& output;
};

// The fused op by the row kernel, parallel over output rows.
template <typename scalar_t>
void rows_kernel(const FuseOperands& op) {
  using T = at::opmath_type<scalar_t>;
  const ParamsBuffer<T> buffer(op.tensors, scalar_t());
  const DimConvGeometry& g = op.geometry;
  using dice_fuse_rows::Strides;
  const dice_fuse_rows::Problem<scalar_t> problem(
      op.input.data_ptr<scalar_t>(),
      op.input_channels_last ? Strides::nhwc(g) : Strides::nchw(g),
      op.weight_depth.data_ptr<scalar_t>(), op.weight_height.data_ptr<scalar_t>(),
      op.weight_width.data_ptr<scalar_t>(), g, buffer.params(), op.output.data_ptr<scalar_t>(),
      op.output_channels_last ? Strides::nhwc(g) : Strides::nchw(g));
  at::parallel_for(0, problem.rows(), dice_fuse_rows::row_grain(g),
                   [&](int64_t begin, int64_t end) {
                     std::vector<T> scratch(problem.scratch_elements());
                     fuse_rows(problem, begin, end, scratch.data());
                   });
}

// Epilogue of channels [begin, end) of one image: `dim_planes` points at the
// DimConv planes 3 * begin .. 3 * end - 1, `out` at the output plane of `begin`.
template <typename scalar_t>
void fuse_channels(const scalar_t* dim_planes, int64_t begin, int64_t end, int64_t plane,
                   const DiceFuseParams<at::opmath_type<scalar_t>>& params, scalar_t* out) {
  for (int64_t c = begin; c < end; ++c) {
    const scalar_t* planes = dim_planes + (c - begin) * kNumBranches * plane;
    fuse_plane(planes + kDepthBranch * plane, planes + kHeightBranch * plane,
               planes + kWidthBranch * plane, plane,
               DiceFuseChannel<at::opmath_type<scalar_t>>(params, c), out + (c - begin) * plane);
  }
}

// The fused op by the slab kernel (any kernel size), parallel over slabs.
template <typename scalar_t>
void slab_kernel(const FuseOperands& op) {
  using T = at::opmath_type<scalar_t>;
  const ParamsBuffer<T> buffer(op.tensors, scalar_t());
  const DiceFuseParams<T> params = buffer.params();
  const DimConvGeometry& g = op.geometry;
  const at::Tensor& input = op.input;
  const at::Tensor& weight_height = op.weight_height;
  const at::Tensor& weight_width = op.weight_width;
  const int64_t plane = g.plane();
  const int64_t channels = g.channels;
  // Channels each side of a slab that its height- and width-wise taps read.
  const int64_t halo = g.radius() * std::max(g.dilation_height, g.dilation_width);
  // Slabs per image: cache-sized, and at least two per thread over the batch.
  const int64_t cache_slabs = (channels * plane + kSlabElements - 1) / kSlabElements;
  const int64_t thread_slabs = (2 * at::get_num_threads() + g.batch - 1) / g.batch;
  const int64_t slabs = std::min(channels, std::max(cache_slabs, thread_slabs));
  const int64_t slab_channels = (channels + slabs - 1) / slabs;
  const scalar_t* x = input.data_ptr<scalar_t>();
  const scalar_t* wd = op.weight_depth.data_ptr<scalar_t>();
  scalar_t* y = op.output.data_ptr<scalar_t>();
  at::parallel_for(0, g.batch * slabs, 1, [&](int64_t unit_begin, int64_t unit_end) {
    // NCHW staging planes of a channels-last slab: its input and its output.
    std::vector<scalar_t> staged_input;
    std::vector<scalar_t> staged_output;
    for (int64_t unit = unit_begin; unit < unit_end; ++unit) {
      const int64_t n = unit / slabs;
      const int64_t begin = (unit % slabs) * slab_channels;
      const int64_t end = std::min(channels, begin + slab_channels);
      if (begin >= end) continue;
      const int64_t lo = std::max<int64_t>(0, begin - halo);
      const int64_t hi = std::min(channels, end + halo);
      DimConvGeometry slab_geometry = g;
      slab_geometry.batch = 1;
      slab_geometry.channels = hi - lo;
      const scalar_t* slab_source = x + (n * channels + lo) * plane;
      if (op.input_channels_last) {
        staged_input.resize((hi - lo) * plane);
        transpose_tiles(x + n * plane * channels + lo, channels, plane, hi - lo,
                        staged_input.data(), plane);
        slab_source = staged_input.data();
      }
      const auto slab_input = at::from_blob(const_cast<scalar_t*>(slab_source),
                                            {1, hi - lo, g.height, g.width}, input.options());
      const auto slab_weight = at::from_blob(const_cast<scalar_t*>(wd + lo * g.taps()),
                                             {hi - lo, 1, g.kernel_size, g.kernel_size},
                                             op.weight_depth.options());
      // Nested in this parallel region, the DimConv kernel runs on this thread.
      const at::Tensor slab_output =
          dim_conv_forward_cpu(slab_input, slab_weight, weight_height, weight_width,
                               slab_geometry);
      const scalar_t* dim_planes =
          slab_output.data_ptr<scalar_t>() + (begin - lo) * kNumBranches * plane;
      if (!op.output_channels_last) {
        fuse_channels(dim_planes, begin, end, plane, params, y + (n * channels + begin) * plane);
        continue;
      }
      staged_output.resize((end - begin) * plane);
      fuse_channels(dim_planes, begin, end, plane, params, staged_output.data());
      transpose_tiles(staged_output.data(), plane, end - begin, plane,
                      y + n * plane * channels + begin, channels);
    }
  });
}

template <typename scalar_t>
void epilogue_kernel(const at::Tensor& dim_output, const DiceFuseTensors& tensors,
                     at::Tensor& output) {
  using T = at::opmath_type<scalar_t>;
  const ParamsBuffer<T> buffer(tensors, scalar_t());
  const DiceFuseParams<T> params = buffer.params();
  const int64_t channels = output.size(1);
  const int64_t plane = output.size(2) * output.size(3);
  const scalar_t* dim = dim_output.data_ptr<scalar_t>();
  scalar_t* y = output.data_ptr<scalar_t>();
  const int64_t grain = parallel_grain(plane);
  at::parallel_for(0, output.size(0) * channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t index = begin; index < end; ++index) {
      const int64_t c = index % channels;
      fuse_channels(dim + index * kNumBranches * plane, c, c + 1, plane, params,
                    y + index * plane);
    }
  });
}

}  // namespace

at::Tensor dice_fuse_forward_cpu(const at::Tensor& input, const at::Tensor& weight_depth,
                                 const at::Tensor& weight_height, const at::Tensor& weight_width,
                                 const DimConvGeometry& geometry, const DiceFuseTensors& params,
                                 bool channels_last_output) {
  const bool input_channels_last = !input.is_contiguous();
  auto output = at::empty({geometry.batch, geometry.channels, geometry.height, geometry.width},
                          input.options().memory_format(channels_last_output
                                                            ? at::MemoryFormat::ChannelsLast
                                                            : at::MemoryFormat::Contiguous));
  if (output.numel() == 0) return output;
  const bool output_channels_last = !output.is_contiguous();
  const FuseOperands operands{input,    weight_depth, weight_height,       weight_width,
                              geometry, params,       input_channels_last, output_channels_last,
                              output};
  const bool rows = dice_fuse_rows::supports(geometry);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, input.scalar_type(), "dice_fuse_forward_cpu", [&] {
    if (rows) {
      rows_kernel<scalar_t>(operands);
    } else {
      slab_kernel<scalar_t>(operands);
    }
  });
  return output;
}

at::Tensor dice_fuse_epilogue_cpu(const at::Tensor& dim_output, const DiceFuseTensors& params) {
  auto output = at::empty({dim_output.size(0), dim_output.size(1) / kNumBranches,
                           dim_output.size(2), dim_output.size(3)},
                          dim_output.options().memory_format(at::MemoryFormat::Contiguous));
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dim_output.scalar_type(),
                                 "dice_fuse_epilogue_cpu",
                                 [&] { epilogue_kernel<scalar_t>(dim_output, params, output); });
  return output;
}

}  // namespace mmdice
