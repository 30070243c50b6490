// conv2d_forward_reference: the plain loop nest every fast convolution is checked against.
// Accumulates in double, so its result is the float32 rounding of a nearly exact sum.
#include "core/contract.hpp"
#include "kernels/conv2d.hpp"

namespace tinytorch::kernels {

void conv2d_forward_reference(float* out, const float* in, const float* weight, const float* bias,
                              const Conv2dGeometry& g) {
  TT_EXPECTS(g.groups >= 1 && g.C % g.groups == 0 && g.OC % g.groups == 0 && g.OH >= 0 && g.OW >= 0);
  const int64_t CG = g.channels_per_group();
  const int64_t OCG = g.out_channels_per_group();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t group = oc / OCG;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double sum = bias ? bias[oc] : 0.0;
          for (int64_t icg = 0; icg < CG; ++icg) {
            const int64_t ic = group * CG + icg;
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
              if (ih < 0 || ih >= g.H) continue;  // zero padding
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
                if (iw < 0 || iw >= g.W) continue;
                const double x = in[((n * g.C + ic) * g.H + ih) * g.W + iw];
                const double w = weight[((oc * CG + icg) * g.KH + kh) * g.KW + kw];
                sum += x * w;
              }
            }
          }
          out[((n * g.OC + oc) * g.OH + oh) * g.OW + ow] = static_cast<float>(sum);
        }
      }
    }
  }
}

void conv2d_backward_input_reference(float* dx, const float* dy, const float* weight, const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group();
  const int64_t OCG = g.out_channels_per_group();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t c = 0; c < g.C; ++c) {
      const int64_t group = c / CG, icg = c % CG;
      for (int64_t ih = 0; ih < g.H; ++ih) {
        for (int64_t iw = 0; iw < g.W; ++iw) {
          double sum = 0.0;
          // Output (oh, ow) read this pixel through tap (kh, kw) if oh*s - pad + kh*d == ih.
          for (int64_t kh = 0; kh < g.KH; ++kh) {
            const int64_t th = ih + g.pad_top - kh * g.dilation_h;
            if (th < 0 || th % g.stride_h != 0 || th / g.stride_h >= g.OH) continue;
            const int64_t oh = th / g.stride_h;
            for (int64_t kw = 0; kw < g.KW; ++kw) {
              const int64_t tw = iw + g.pad_left - kw * g.dilation_w;
              if (tw < 0 || tw % g.stride_w != 0 || tw / g.stride_w >= g.OW) continue;
              const int64_t ow = tw / g.stride_w;
              for (int64_t ocg = 0; ocg < OCG; ++ocg) {
                const int64_t oc = group * OCG + ocg;
                sum += static_cast<double>(dy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow]) *
                       weight[((oc * CG + icg) * g.KH + kh) * g.KW + kw];
              }
            }
          }
          dx[((n * g.C + c) * g.H + ih) * g.W + iw] = static_cast<float>(sum);
        }
      }
    }
  }
}

void conv2d_backward_weight_reference(float* dw, const float* dy, const float* in, const Conv2dGeometry& g) {
  const int64_t CG = g.channels_per_group();
  const int64_t OCG = g.out_channels_per_group();
  for (int64_t oc = 0; oc < g.OC; ++oc) {
    const int64_t group = oc / OCG;
    for (int64_t icg = 0; icg < CG; ++icg) {
      const int64_t c = group * CG + icg;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          double sum = 0.0;
          for (int64_t n = 0; n < g.N; ++n) {
            for (int64_t oh = 0; oh < g.OH; ++oh) {
              const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t ow = 0; ow < g.OW; ++ow) {
                const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
                if (iw < 0 || iw >= g.W) continue;
                sum += static_cast<double>(dy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow]) *
                       in[((n * g.C + c) * g.H + ih) * g.W + iw];
              }
            }
          }
          dw[((oc * CG + icg) * g.KH + kh) * g.KW + kw] = static_cast<float>(sum);
        }
      }
    }
  }
}

void conv2d_backward_bias_reference(float* db, const float* dy, const Conv2dGeometry& g) {
  for (int64_t oc = 0; oc < g.OC; ++oc) {
    double sum = 0.0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t p = 0; p < g.OH * g.OW; ++p) sum += dy[(n * g.OC + oc) * g.OH * g.OW + p];
    db[oc] = static_cast<float>(sum);
  }
}

}  // namespace tinytorch::kernels
