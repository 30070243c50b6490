// `tinytorch analyze --loops`: the seed's first question (how to order the convolution's loops for
// cache locality) answered by timing the same convolution written five ways, then the fast path.
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <sstream>

#include "analyses.hpp"
#include "json.hpp"
#include "timing.hpp"
#include "tinytorch/tinytorch.hpp"

namespace tinytorch::cli {
namespace {

// The layer the variants compute: batch 1, 3x3, stride 1, padding 1 (so OH = H, OW = W).
struct LoopShape {
  int64_t C, H, W, OC, OH, OW;
};

// Every variant computes out [OC, OH, OW] from in [C, H, W] and w [OC, C, 3, 3], batch 1,
// stride 1, padding 1, no bias; the input is pre-padded to [C, H + 2, W + 2] so the loops show
// the access pattern, not the border tests.

// 1. Output-stationary, the seed's order: oc, oh, ow outside; c, kh, kw inside. Each output is
//    one register sum, but the innermost loop jumps between channel planes.
void loops_output_stationary(float* out, const float* in, const float* w, const LoopShape& g) {
  const int64_t PW = g.W + 2, PH = g.H + 2;
  for (int64_t oc = 0; oc < g.OC; ++oc)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float sum = 0.0f;
        for (int64_t c = 0; c < g.C; ++c)
          for (int64_t kh = 0; kh < 3; ++kh)
            for (int64_t kw = 0; kw < 3; ++kw)
              sum += in[(c * PH + oh + kh) * PW + ow + kw] * w[((oc * g.C + c) * 3 + kh) * 3 + kw];
        out[(oc * g.OH + oh) * g.OW + ow] = sum;
      }
}

// 2. Channel-outer (input-stationary): c, kh, kw, oc outside; oh, ow inside. The innermost loop
//    walks memory contiguously, but every tap re-reads and re-writes a whole output plane.
void loops_channel_outer(float* out, const float* in, const float* w, const LoopShape& g) {
  const int64_t PW = g.W + 2, PH = g.H + 2;
  std::fill_n(out, g.OC * g.OH * g.OW, 0.0f);
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < 3; ++kh)
      for (int64_t kw = 0; kw < 3; ++kw)
        for (int64_t oc = 0; oc < g.OC; ++oc) {
          const float wv = w[((oc * g.C + c) * 3 + kh) * 3 + kw];
          for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow)
              out[(oc * g.OH + oh) * g.OW + ow] += wv * in[(c * PH + oh + kh) * PW + ow + kw];
        }
}

// 3. Row-stationary: oc, oh outside; c, kh, kw; ow innermost. One output row stays in L1 while
//    every tap adds a contiguous input row to it: the compiler vectorizes the ow loop.
void loops_row_stationary(float* out, const float* in, const float* w, const LoopShape& g) {
  const int64_t PW = g.W + 2, PH = g.H + 2;
  for (int64_t oc = 0; oc < g.OC; ++oc)
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      float* row = out + (oc * g.OH + oh) * g.OW;
      std::fill_n(row, g.OW, 0.0f);
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t kh = 0; kh < 3; ++kh) {
          const float* src = in + (c * PH + oh + kh) * PW;
          for (int64_t kw = 0; kw < 3; ++kw) {
            const float wv = w[((oc * g.C + c) * 3 + kh) * 3 + kw];
            for (int64_t ow = 0; ow < g.OW; ++ow) row[ow] += wv * src[ow + kw];
          }
        }
    }
}

// 4. Cache-blocked: as 3, but 8 output channels share each input row while it is in L1, so the
//    input is read from memory OC/8 times instead of OC times.
void loops_blocked(float* out, const float* in, const float* w, const LoopShape& g) {
  const int64_t PW = g.W + 2, PH = g.H + 2, B = 8;
  for (int64_t oc0 = 0; oc0 < g.OC; oc0 += B)
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t nb = std::min(B, g.OC - oc0);
      for (int64_t b = 0; b < nb; ++b) std::fill_n(out + ((oc0 + b) * g.OH + oh) * g.OW, g.OW, 0.0f);
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t kh = 0; kh < 3; ++kh) {
          const float* src = in + (c * PH + oh + kh) * PW;
          for (int64_t b = 0; b < nb; ++b) {
            float* row = out + ((oc0 + b) * g.OH + oh) * g.OW;
            const float* wr = w + (((oc0 + b) * g.C + c) * 3 + kh) * 3;
            for (int64_t ow = 0; ow < g.OW; ++ow)
              row[ow] += wr[0] * src[ow] + wr[1] * src[ow + 1] + wr[2] * src[ow + 2];
          }
        }
    }
}

struct Variant {
  std::string name, order;
  double bytes_per_flop;  // bytes the innermost statement loads and stores, per FLOP
  std::function<void()> run;
};

}  // namespace

int analyze_loops(bool json, int64_t size, int64_t channels) {
  set_num_threads(1);
  const LoopShape g{channels, size, size, channels, size, size};
  const Tensor x = Tensor::randn({channels, size, size}), w = Tensor::randn({channels, channels, 3, 3});
  Tensor padded = Tensor::zeros({channels, size + 2, size + 2});
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t h = 0; h < size; ++h)
      std::copy_n(x.data() + (c * size + h) * size, size, padded.data() + (c * (size + 2) + h + 1) * (size + 2) + 1);
  Tensor out = Tensor::empty({channels, size, size});
  const Tensor want = conv2d_with(Conv2dAlgorithm::Reference, x, w, {}, {.padding = 1});
  const float* in = padded.data();
  const float* wp = w.data();
  float* o = out.data();
  const Conv2dAlgorithm fast = select_conv2d_algorithm(x.shape(), w.shape(), {.padding = 1});
  std::vector<Variant> variants = {
      {"output-stationary", "oc,oh,ow | c,kh,kw", 4.0, [&] { loops_output_stationary(o, in, wp, g); }},
      {"channel-outer", "c,kh,kw,oc | oh,ow", 6.0, [&] { loops_channel_outer(o, in, wp, g); }},
      {"row-stationary", "oc,oh | c,kh,kw | ow", 6.0, [&] { loops_row_stationary(o, in, wp, g); }},
      {"cache-blocked", "oc/8,oh | c,kh | oc%8 | ow", 20.0 / 6, [&] { loops_blocked(o, in, wp, g); }},
      {"fast path (" + to_string(fast) + ")", "see docs/ARCHITECTURE.md", 0.0,
       [&] {
         out = conv2d(x, w, {}, {.padding = 1});
         o = out.data();
       }},
  };
  const double flops = 2.0 * channels * channels * 9 * size * size;
  Json js = {{"shape", {{"C", channels}, {"OC", channels}, {"H", size}, {"W", size}, {"kernel", 3}, {"padding", 1}}},
             {"flops", flops},
             {"variants", Json::array()}};
  if (!json) {
    std::printf("Loop orders for one convolution: %lldx%lldx%lld -> %lld channels, 3x3, padding 1, 1 thread\n",
                (long long)channels, (long long)size, (long long)size, (long long)channels);
    std::printf("(%.1f MFLOP; B/FLOP: bytes the innermost statement loads and stores per FLOP)\n\n", flops / 1e6);
    std::printf("  %-24s %-28s %10s %9s %7s %8s\n", "variant", "loop order (outer | inner)", "ms", "GFLOP/s", "B/FLOP",
                "max err");
  }
  for (size_t i = 0; i < variants.size(); ++i) {
    Variant& v = variants[i];
    const double s = median_seconds(v.run, 3, 0.2, 200);
    double err = 0;
    for (int64_t j = 0; j < out.numel(); ++j) err = std::max(err, (double)std::fabs(out.data()[j] - want.data()[j]));
    if (json) {
      js["variants"].push_back({{"name", v.name},
                                {"order", v.order},
                                {"seconds", s},
                                {"gflops", flops / s / 1e9},
                                {"bytes_per_flop", v.bytes_per_flop},
                                {"max_abs_error", err}});
    } else {
      std::printf("  %-24s %-28s %10.3f %9.2f %7.2f %8.1e\n", v.name.c_str(), v.order.c_str(), s * 1e3, flops / s / 1e9,
                  v.bytes_per_flop, err);
    }
  }
  if (json) {
    std::cout << json_text(js) << "\n";
    return 0;
  }
  std::printf(
      "\nWhat the numbers say: the innermost loop decides. Output-stationary keeps one sum in a register\n"
      "but strides across channel planes, so nothing vectorizes. Putting a contiguous dimension (ow)\n"
      "innermost lets the compiler use 8-16 lanes at once; keeping the output row in L1 (row-stationary)\n"
      "avoids re-streaming whole planes (channel-outer), and blocking output channels reuses each input\n"
      "row from L1. The fast path adds register blocking (an MR x NR tile of sums held in registers) and,\n"
      "for 3x3 layers, Winograd's 4x fewer multiplies.\n");
  return 0;
}

}  // namespace tinytorch::cli
