// Backward CPU kernel of DimConv (the design is in dim_conv_cpu_plane_window.h):
// one parallel pass over (n, c) planes computes the grad_input plane c as a
// gather (the forward taps with negated offsets, no atomics) together with
// per-chunk partial weight gradients, which are reduced in a fixed order at
// the end (deterministic for a given number of threads).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include "../../common/cpu/dim_conv_cpu_taps.h"
#include "../dim_conv.h"
#include "cpu_accumulate.h"

namespace mmdice {
namespace dim_conv_cpu {
namespace {

// lanes[j] += sum over blocks of a[start + j] * b[start + j], j < kBlock: a dot
// product whose kBlock lanes are summed only once, at the end of the
// backward; length % kBlock == 0.
template <typename T>
MMDICE_INLINE void dot_lanes(const T* a, const T* b, int64_t length, T* lanes) {
  T acc[kBlock] = {};
  for (int64_t start = 0; start < length; start += kBlock) {
    for (int64_t j = 0; j < kBlock; ++j) acc[j] += a[start + j] * b[start + j];
  }
  for (int64_t j = 0; j < kBlock; ++j) lanes[j] += acc[j];
}

// acc[0:length] += a[0:length] * b[0:length]; length % kBlock == 0.
template <typename T>
MMDICE_INLINE void multiply_accumulate(T* acc, const T* a, const T* b, int64_t length) {
  for (int64_t start = 0; start < length; start += kBlock) {
    for (int64_t j = 0; j < kBlock; ++j) acc[start + j] += a[start + j] * b[start + j];
  }
}

// Per-chunk partial weight gradients: depth (C, taps, kBlock) as the lanes of
// dot products, height and width as flat (taps, length) planes of products;
// lanes, columns (height) and rows (width) are summed only once, at the end.
template <typename T>
class PartialWeightGrads {
 public:
  PartialWeightGrads(int64_t chunks, int64_t planes, const DimConvGeometry& g,
                     const PlaneLayout& layout)
      : chunk_size_((planes + chunks - 1) / chunks),
        depth_size_(g.channels * g.taps() * kBlock),
        height_size_(g.height_taps() * layout.length),
        width_size_(g.width_taps() * layout.length) {
    // One aligned buffer per chunk: threads never write to a shared cache line.
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      buffers_.push_back(
          std::make_unique<AlignedBuffer<T>>(depth_size_ + height_size_ + width_size_));
    }
  }

  int64_t chunk_size() const { return chunk_size_; }  // planes per chunk
  // (C, taps, kBlock) lanes of the depth-wise weight gradient of chunk `chunk`.
  T* depth(int64_t chunk) { return buffers_[chunk]->data(); }
  // (taps, length) products of the height- or width-wise weight gradient.
  T* flat(int64_t branch, int64_t chunk) {
    return buffers_[chunk]->data() + depth_size_ + (branch == kHeightBranch ? 0 : height_size_);
  }

 private:
  int64_t chunk_size_;
  int64_t depth_size_;
  int64_t height_size_;
  int64_t width_size_;
  std::vector<std::unique_ptr<AlignedBuffer<T>>> buffers_;
};

// Backward of the planes of chunk `chunk`: grad_input and the chunk's partial
// weight gradients, each only where `mask` asks for it.
template <typename scalar_t>
MMDICE_INLINE void backward_chunk_impl(const Problem<scalar_t>& problem,
                                         const scalar_t* grad_output, scalar_t* grad_input,
                                         PartialWeightGrads<at::opmath_type<scalar_t>>& partials,
                                         int64_t chunk, const DimConvGradMask& mask) {
  using T = at::opmath_type<scalar_t>;
  using Window = PlaneWindow<scalar_t, T>;
  const DimConvGeometry& g = problem.geometry;
  const BranchTaps& taps = problem.taps;
  const int64_t length = problem.layout.length;
  Window x_window = problem.input_window();

  // grad_input plane c is each branch's transposed convolution: the forward
  // taps with negated channel, row and column offsets, over the gradient
  // planes of that branch (channels 3j + branch of grad_output).
  std::vector<std::unique_ptr<Window>> grad_windows;
  TapList<scalar_t> grad_input_taps(problem);
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    std::vector<int64_t> shifts = taps.column_shifts({branch});
    for (int64_t& shift : shifts) shift = -shift;
    std::sort(shifts.begin(), shifts.end());
    grad_windows.push_back(std::make_unique<Window>(
        grad_output, g.channels, kNumBranches * g.channels, kNumBranches, branch,
        taps.channel_radius({branch}), shifts, problem.layout, problem.zeros()));
    for (const TapGeometry& tap : taps.branches[branch]) {
      grad_input_taps.add(branch, tap, *grad_windows[branch], -tap.channel_offset,
                          -tap.column_shift, -tap.row_offset);
    }
  }
  // Weight gradients: the plane's output gradient of each branch times the
  // input each of its taps read in the forward pass.
  std::vector<TapList<scalar_t>> input_taps(kNumBranches, TapList<scalar_t>(problem));
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    for (const TapGeometry& tap : taps.branches[branch]) {
      input_taps[branch].add(branch, tap, x_window, tap.channel_offset, tap.column_shift,
                             tap.row_offset);
    }
  }

  // Window slot of each branch's gradient plane c itself.
  std::array<int64_t, kNumBranches> own_grad_slots;
  for (int64_t branch = 0; branch < kNumBranches; ++branch) {
    if (!taps.branches[branch].empty()) own_grad_slots[branch] = grad_windows[branch]->slot(0, 0);
  }

  T* depth_partial = partials.depth(chunk);
  const int64_t begin = chunk * partials.chunk_size();
  const int64_t end = std::min(g.batch * g.channels, begin + partials.chunk_size());
  PlaneCursor cursor(begin, g.channels);
  for (int64_t plane = begin; plane < end; ++plane, cursor.next()) {
    const int64_t n = cursor.n;
    const int64_t c = cursor.c;
    if (mask.any_weight()) x_window.move_to(n, c);
    for (auto& window : grad_windows) window->move_to(n, c);
    if (mask.input) {
      grad_input_taps.bind(c);
      grad_input_taps.gather(g.plane(), grad_input + plane * g.plane());
    }

    // The zeros past the end of the gradient copies mask the reads past the plane.
    for (int64_t branch = 0; branch < kNumBranches; ++branch) {
      if (!mask.weights[branch] || taps.branches[branch].empty()) continue;
      const T* grad = grad_windows[branch]->plane(own_grad_slots[branch]);
      TapList<scalar_t>& list = input_taps[branch];
      list.bind(c);
      for (int64_t t = 0; t < list.scalar_count(); ++t) {
        dot_lanes(grad, list.scalar_source(t), length,
                  depth_partial + (c * g.taps() + list.scalar_index(t)) * kBlock);
      }
      T* flat_partial = branch == kDepthBranch ? nullptr : partials.flat(branch, chunk);
      for (int64_t t = 0; t < list.vector_count(); ++t) {
        multiply_accumulate(flat_partial + list.vector_index(t) * length, grad,
                            list.vector_source(t), length);
      }
    }
  }
}

// totals[position(h, w) * taps + tap] += partial[tap][h * W + w] over (h, w):
// a flat partial weight gradient summed over its columns (height-wise,
// position h) or rows (width-wise, position w).
template <typename T, typename Position>
void add_flat_partial(const T* partial, int64_t taps, const DimConvGeometry& g,
                      const PlaneLayout& layout, const Position& position, std::vector<T>& totals) {
  for (int64_t tap = 0; tap < taps; ++tap) {
    for (int64_t h = 0; h < g.height; ++h) {
      for (int64_t w = 0; w < g.width; ++w) {
        totals[position(h, w) * taps + tap] += partial[tap * layout.length + h * g.width + w];
      }
    }
  }
}

#define DIM_CONV_DEFINE_WORKER(scalar_t)                                                       \
  MMDICE_CPU_CLONES void backward_chunk(                                                       \
      const Problem<scalar_t>& problem, const scalar_t* grad_output, scalar_t* grad_input,      \
      PartialWeightGrads<at::opmath_type<scalar_t>>& partials, int64_t chunk,                   \
      const DimConvGradMask& mask) {                                                            \
    backward_chunk_impl(problem, grad_output, grad_input, partials, chunk, mask);               \
  }
MMDICE_CPU_FLOATING_TYPES_AND_BFLOAT16(DIM_CONV_DEFINE_WORKER)
#undef DIM_CONV_DEFINE_WORKER

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                     const at::Tensor& weight_depth, const at::Tensor& weight_height,
                     const at::Tensor& weight_width, const DimConvGeometry& g,
                     const DimConvGradMask& mask, at::Tensor& grad_input,
                     at::Tensor& grad_weight_depth, at::Tensor& grad_weight_height,
                     at::Tensor& grad_weight_width) {
  using T = at::opmath_type<scalar_t>;
  const Problem<scalar_t> problem(input.data_ptr<scalar_t>(), weight_depth.data_ptr<scalar_t>(),
                                  weight_height.data_ptr<scalar_t>(),
                                  weight_width.data_ptr<scalar_t>(), g, /*backward=*/true);
  const PlaneLayout& layout = problem.layout;

  // One chunk of planes per thread, each with its own partial weight gradients.
  const int64_t planes = g.batch * g.channels;
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(), planes / parallel_grain(g.plane())));
  PartialWeightGrads<T> partials(chunks, planes, g, layout);
  const scalar_t* grad_y = grad_output.data_ptr<scalar_t>();
  scalar_t* grad_x = mask.input ? grad_input.data_ptr<scalar_t>() : nullptr;
  at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      backward_chunk(problem, grad_y, grad_x, partials, chunk, mask);
    }
  });
  if (!mask.any_weight()) return;

  // Deterministic reduction: chunks in order, then the columns (height) or
  // rows (width) of the flat partial planes.
  scalar_t* grad_depth_weights = grad_weight_depth.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.channels * g.depth_taps(); ++i) {
    T lanes[kBlock] = {};
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const T* partial = partials.depth(chunk) + i * kBlock;
      for (int64_t j = 0; j < kBlock; ++j) lanes[j] += partial[j];
    }
    for (int64_t half = kBlock / 2; half > 0; half /= 2) {
      for (int64_t j = 0; j < half; ++j) lanes[j] += lanes[j + half];
    }
    grad_depth_weights[i] = static_cast<scalar_t>(lanes[0]);
  }
  const int64_t height_taps = g.height_taps();
  const int64_t width_taps = g.width_taps();
  std::vector<T> height_totals(g.height * height_taps, T(0));
  std::vector<T> width_totals(g.width * width_taps, T(0));
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    add_flat_partial(partials.flat(kHeightBranch, chunk), height_taps, g, layout,
                     [](int64_t h, int64_t) { return h; }, height_totals);
    add_flat_partial(partials.flat(kWidthBranch, chunk), width_taps, g, layout,
                     [](int64_t, int64_t w) { return w; }, width_totals);
  }
  scalar_t* grad_height_weights = grad_weight_height.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.height * height_taps; ++i) {
    grad_height_weights[i] = static_cast<scalar_t>(height_totals[i]);
  }
  scalar_t* grad_width_weights = grad_weight_width.data_ptr<scalar_t>();
  for (int64_t i = 0; i < g.width * width_taps; ++i) {
    grad_width_weights[i] = static_cast<scalar_t>(width_totals[i]);
  }
}

}  // namespace
}  // namespace dim_conv_cpu

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dim_conv_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight_depth,
    const at::Tensor& weight_height, const at::Tensor& weight_width,
    const DimConvGeometry& geometry, const DimConvGradMask& mask) {
  const auto options = grad_output.options().memory_format(at::MemoryFormat::Contiguous);
  at::Tensor grad_input, grad_weight_depth, grad_weight_height, grad_weight_width;
  std::tie(grad_input, grad_weight_depth, grad_weight_height, grad_weight_width) =
      allocate_dim_conv_grads(input, weight_depth, weight_height, weight_width, mask, options);
  if (input.numel() > 0 && (mask.input || mask.any_weight())) {
    AT_DISPATCH_FLOATING_TYPES_AND(
        at::kBFloat16, input.scalar_type(), "dim_conv_backward_cpu", [&] {
          dim_conv_cpu::backward_kernel<scalar_t>(grad_output, input, weight_depth,
                                                  weight_height, weight_width, geometry, mask,
                                                  grad_input, grad_weight_depth,
                                                  grad_weight_height, grad_weight_width);
        });
  }
  return {grad_input, mask.weights[kDepthBranch] ? grad_weight_depth : at::Tensor(),
          mask.weights[kHeightBranch] ? grad_weight_height : at::Tensor(),
          mask.weights[kWidthBranch] ? grad_weight_width : at::Tensor()};
}

}  // namespace mmdice
