// CPU kernels of the fused BatchNorm + PReLU op.
//
// Every pass walks one channel at a time (its N planes of H * W contiguous
// elements), so threads share no output and a channel's data is still in
// cache when the backward's second pass reads it again.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../common/cpu/cpu_kernel_utils.h"
#include "../batch_norm_prelu.h"

namespace mmdice {

namespace {

// The per-channel constants of one pass, in the accumulation type T.
template <typename T>
struct ChannelAffine {
  T scale;   // weight / sqrt(var + eps)
  T shift;   // bias - mean * scale
  T slope;   // PReLU slope
  T mean;
  T invstd;  // 1 / sqrt(var + eps)
};

// Plane reductions are `omp simd` reductions: vectorised with one partial sum
// per lane (GCC does not reassociate a plain float sum), added up in double
// per plane by the caller.
template <typename scalar_t>
MMDICE_INLINE void stats_plane_impl(const scalar_t* x, int64_t size, scalar_t origin,
                                      double& sum, double& square_sum) {
  using T = at::opmath_type<scalar_t>;
  const T shift = static_cast<T>(origin);
  T s = 0, q = 0;
#pragma omp simd reduction(+ : s, q)
  for (int64_t i = 0; i < size; ++i) {
    const T d = static_cast<T>(x[i]) - shift;
    s += d;
    q += d * d;
  }
  sum += s;
  square_sum += q;
}

template <typename scalar_t>
MMDICE_INLINE void forward_plane_impl(const scalar_t* x, int64_t size,
                                        const ChannelAffine<at::opmath_type<scalar_t>>& ch,
                                        scalar_t* y) {
  using T = at::opmath_type<scalar_t>;
  const T scale = ch.scale, shift = ch.shift, slope = ch.slope;
#pragma omp simd
  for (int64_t i = 0; i < size; ++i) {
    const T v = static_cast<T>(x[i]) * scale + shift;
    y[i] = static_cast<scalar_t>(v > T(0) ? v : slope * v);
  }
}

// sums[0..2] += the plane's sums of g' = dL/dv, of g' * xhat and, where
// v <= 0, of g * v (v the pre-activation, xhat the normalised input).
template <typename scalar_t>
MMDICE_INLINE void backward_sums_plane_impl(const scalar_t* x, const scalar_t* g,
                                              int64_t size,
                                              const ChannelAffine<at::opmath_type<scalar_t>>& ch,
                                              double* sums) {
  using T = at::opmath_type<scalar_t>;
  const T scale = ch.scale, shift = ch.shift, slope = ch.slope, mean = ch.mean,
          invstd = ch.invstd;
  T grad = 0, grad_xhat = 0, grad_slope = 0;
#pragma omp simd reduction(+ : grad, grad_xhat, grad_slope)
  for (int64_t i = 0; i < size; ++i) {
    const T xv = static_cast<T>(x[i]);
    const T gv = static_cast<T>(g[i]);
    const T v = xv * scale + shift;
    const bool positive = v > T(0);
    const T gp = positive ? gv : slope * gv;
    grad += gp;
    grad_xhat += gp * ((xv - mean) * invstd);
    grad_slope += positive ? T(0) : gv * v;
  }
  sums[0] += grad;
  sums[1] += grad_xhat;
  sums[2] += grad_slope;
}

// grad_input = g' * k_grad - xhat * k_xhat - k_bias.
template <typename scalar_t>
MMDICE_INLINE void backward_input_plane_impl(
    const scalar_t* x, const scalar_t* g, int64_t size,
    const ChannelAffine<at::opmath_type<scalar_t>>& ch, at::opmath_type<scalar_t> k_grad,
    at::opmath_type<scalar_t> k_xhat, at::opmath_type<scalar_t> k_bias, scalar_t* grad_input) {
  using T = at::opmath_type<scalar_t>;
  const T scale = ch.scale, shift = ch.shift, slope = ch.slope, mean = ch.mean,
          invstd = ch.invstd;
#pragma omp simd
  for (int64_t i = 0; i < size; ++i) {
    const T xv = static_cast<T>(x[i]);
    const T gv = static_cast<T>(g[i]);
    const T v = xv * scale + shift;
    const T gp = v > T(0) ? gv : slope * gv;
    grad_input[i] = static_cast<scalar_t>(gp * k_grad - ((xv - mean) * invstd) * k_xhat - k_bias);
  }
}

// One set of workers per dtype (see cpu_kernel_utils.h).
#define BN_PRELU_DEFINE_WORKERS(scalar_t)                                                     \
  MMDICE_CPU_CLONES void stats_plane(const scalar_t* x, int64_t size, scalar_t origin,      \
                                       double& sum, double& square_sum) {                     \
    stats_plane_impl(x, size, origin, sum, square_sum);                                       \
  }                                                                                            \
  MMDICE_CPU_CLONES void forward_plane(const scalar_t* x, int64_t size,                     \
                                         const ChannelAffine<at::opmath_type<scalar_t>>& ch,  \
                                         scalar_t* y) {                                       \
    forward_plane_impl(x, size, ch, y);                                                       \
  }                                                                                            \
  MMDICE_CPU_CLONES void backward_sums_plane(                                               \
      const scalar_t* x, const scalar_t* g, int64_t size,                                     \
      const ChannelAffine<at::opmath_type<scalar_t>>& ch, double* sums) {                     \
    backward_sums_plane_impl(x, g, size, ch, sums);                                           \
  }                                                                                            \
  MMDICE_CPU_CLONES void backward_input_plane(                                              \
      const scalar_t* x, const scalar_t* g, int64_t size,                                     \
      const ChannelAffine<at::opmath_type<scalar_t>>& ch, at::opmath_type<scalar_t> k_grad,   \
      at::opmath_type<scalar_t> k_xhat, at::opmath_type<scalar_t> k_bias,                     \
      scalar_t* grad_input) {                                                                 \
    backward_input_plane_impl(x, g, size, ch, k_grad, k_xhat, k_bias, grad_input);            \
  }
MMDICE_CPU_FLOATING_TYPES(BN_PRELU_DEFINE_WORKERS)
#undef BN_PRELU_DEFINE_WORKERS

// Geometry of an (N, C, H, W) tensor walked channel by channel.
struct ChannelWalk {
  int64_t batch, channels, plane;

  explicit ChannelWalk(const at::Tensor& t)
      : batch(t.size(0)), channels(t.size(1)), plane(t.size(2) * t.size(3)) {}

  int64_t offset(int64_t n, int64_t c) const { return (n * channels + c) * plane; }
  int64_t count() const { return batch * plane; }
  // Channels per task: enough elements to amortise a task (ATen's grain).
  int64_t grain() const { return parallel_grain(count()); }
};

// The per-channel tensors of one call (contiguous (C), the input's dtype) and eps.
template <typename scalar_t>
struct ChannelParams {
  const scalar_t* weight;
  const scalar_t* bias;
  const scalar_t* slope;
  const scalar_t* mean;
  const scalar_t* var;
  double eps;

  ChannelParams(const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& slope,
                const at::Tensor& mean, const at::Tensor& var, double eps)
      : weight(weight.const_data_ptr<scalar_t>()),
        bias(bias.const_data_ptr<scalar_t>()),
        slope(slope.const_data_ptr<scalar_t>()),
        mean(mean.const_data_ptr<scalar_t>()),
        var(var.const_data_ptr<scalar_t>()),
        eps(eps) {}

  // Channel c's constants, computed in double and rounded once.
  ChannelAffine<at::opmath_type<scalar_t>> affine(int64_t c) const {
    using T = at::opmath_type<scalar_t>;
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    const double scale = static_cast<double>(weight[c]) * invstd;
    return {static_cast<T>(scale),
            static_cast<T>(static_cast<double>(bias[c]) - static_cast<double>(mean[c]) * scale),
            static_cast<T>(slope[c]), static_cast<T>(mean[c]), static_cast<T>(invstd)};
  }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor> batch_norm_stats_cpu(const at::Tensor& input) {
  const ChannelWalk walk(input);
  at::Tensor mean = at::empty({walk.channels}, input.options());
  at::Tensor var = at::empty({walk.channels}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_stats_cpu", [&] {
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    scalar_t* mean_data = mean.data_ptr<scalar_t>();
    scalar_t* var_data = var.data_ptr<scalar_t>();
    at::parallel_for(0, walk.channels, walk.grain(), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        // Sums of x - x[0, c] (shifted data): no cancellation when |mean| >> std.
        const scalar_t origin = x[walk.offset(0, c)];
        double sum = 0, square_sum = 0;
        for (int64_t n = 0; n < walk.batch; ++n) {
          stats_plane(x + walk.offset(n, c), walk.plane, origin, sum, square_sum);
        }
        const double shifted_mean = sum / walk.count();
        mean_data[c] = static_cast<scalar_t>(static_cast<double>(origin) + shifted_mean);
        var_data[c] = static_cast<scalar_t>(
            std::max(0.0, square_sum / walk.count() - shifted_mean * shifted_mean));
      }
    });
  });
  return {mean, var};
}

at::Tensor batch_norm_prelu_forward_cpu(const at::Tensor& input, const at::Tensor& weight,
                                        const at::Tensor& bias, const at::Tensor& slope,
                                        const at::Tensor& mean, const at::Tensor& var,
                                        double eps) {
  const ChannelWalk walk(input);
  at::Tensor output = at::empty_like(input);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_prelu_forward_cpu", [&] {
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    scalar_t* y = output.data_ptr<scalar_t>();
    const ChannelParams<scalar_t> params(weight, bias, slope, mean, var, eps);
    at::parallel_for(0, walk.channels, walk.grain(), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const auto ch = params.affine(c);
        for (int64_t n = 0; n < walk.batch; ++n) {
          forward_plane(x + walk.offset(n, c), walk.plane, ch, y + walk.offset(n, c));
        }
      }
    });
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> batch_norm_prelu_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    const at::Tensor& bias, const at::Tensor& slope, const at::Tensor& mean,
    const at::Tensor& var, double eps, bool batch_stats, bool input_grad) {
  const ChannelWalk walk(input);
  at::Tensor grad_input = input_grad ? at::empty_like(input) : at::Tensor();
  at::Tensor grad_weight = at::empty({walk.channels}, input.options());
  at::Tensor grad_bias = at::empty({walk.channels}, input.options());
  at::Tensor grad_slope = at::empty({walk.channels}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "batch_norm_prelu_backward_cpu", [&] {
    using T = at::opmath_type<scalar_t>;
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    const scalar_t* g = grad_output.const_data_ptr<scalar_t>();
    const ChannelParams<scalar_t> params(weight, bias, slope, mean, var, eps);
    at::parallel_for(0, walk.channels, walk.grain(), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const auto ch = params.affine(c);
        double sums[3] = {0, 0, 0};
        for (int64_t n = 0; n < walk.batch; ++n) {
          backward_sums_plane(x + walk.offset(n, c), g + walk.offset(n, c), walk.plane, ch,
                              sums);
        }
        grad_bias.data_ptr<scalar_t>()[c] = static_cast<scalar_t>(sums[0]);
        grad_weight.data_ptr<scalar_t>()[c] = static_cast<scalar_t>(sums[1]);
        grad_slope.data_ptr<scalar_t>()[c] = static_cast<scalar_t>(sums[2]);
        if (!input_grad) continue;
        // dL/dx = weight * invstd * (g' - mean(g') - xhat * mean(g' * xhat)) with
        // batch statistics, weight * invstd * g' with fixed ones.
        const double k_grad = static_cast<double>(params.weight[c]) *
                              static_cast<double>(ch.invstd);
        const double k_xhat = batch_stats ? k_grad * sums[1] / walk.count() : 0.0;
        const double k_bias = batch_stats ? k_grad * sums[0] / walk.count() : 0.0;
        scalar_t* gx = grad_input.data_ptr<scalar_t>();
        for (int64_t n = 0; n < walk.batch; ++n) {
          backward_input_plane(x + walk.offset(n, c), g + walk.offset(n, c), walk.plane, ch,
                               static_cast<T>(k_grad), static_cast<T>(k_xhat),
                               static_cast<T>(k_bias), gx + walk.offset(n, c));
        }
      }
    });
  });
  return {grad_input, grad_weight, grad_bias, grad_slope};
}

}  // namespace mmdice
