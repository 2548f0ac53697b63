// Recurrent loops for CPUs, one cell update per step fused into a single pass over its gates.
//
// Built on first use by seqlab/models/native.py (torch.utils.cpp_extension). PyTorch runs a cell
// as ~8 operations a step, each a pass over the batch's gates plus a few microseconds of dispatch;
// here a step is one pass: the recurrent product of a block of rows (csrc/product.h), summed in
// registers, goes straight into that block's cell update. Gates are in PyTorch's
// order (input, forget, cell, output for the LSTM; reset, update, candidate for the GRU) unless
// `cell_gate` says where the LSTM's cell gate sits (folded tables keep the sigmoid gates first).
// Every function checks its tensors' shapes and types; callers are seqlab's own modules.
// (The SimpleRNN's training loops below run ATen's own operations, and are not fused: see there;
// its prediction from a folded table is fused like the others.)
// Tensors are time-major: (time, batch, features).

#include <torch/extension.h>
#include <ATen/cpu/vec/vec.h>

#include "product.h"

#include <algorithm>
#include <vector>

namespace {

using at::Tensor;
using Vec = at::vec::Vectorized<float>;

// exp without a library call: ATen's polynomial (20 ulp) where the vector width has one. tanh from
// it is within 2e-7 of the exact value (absolute; near 0 that is most of the value); PyTorch's
// within 3e-8. ATen's polynomial clamps its input, which would turn NaN into a number: NaN is put
// back, so a diverging run shows NaN here as in PyTorch's kernels.
inline Vec exponential(const Vec& v) { return v.exp_u20(); }
inline Vec keep_nan(const Vec& result, const Vec& v) { return Vec::blendv(result, v, v.isnan()); }
inline Vec sigmoid(const Vec& v) { return keep_nan(Vec(1.f) / (Vec(1.f) + exponential(v.neg())), v); }
inline Vec hyperbolic_tangent(const Vec& v) {
  return keep_nan(Vec(2.f) / (Vec(1.f) + exponential(v * Vec(-2.f))) - Vec(1.f), v);
}

void check_float(const Tensor& t, int64_t dims, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == dims && t.is_contiguous(),
              name, " must be a contiguous float32 CPU tensor of ", dims, " dimensions");
}

void check_shape(const Tensor& t, at::IntArrayRef shape, const char* name) {
  TORCH_CHECK(t.sizes() == shape, name, " must have shape ", shape, "; got ", t.sizes());
}

// The hidden size of a (time, batch, gates * hidden) tensor.
int64_t hidden_of(const Tensor& t, int64_t gates, const char* name) {
  TORCH_CHECK(t.size(2) % gates == 0 && t.size(2) > 0, name, " must have a multiple of ", gates, " features; got ", t.size(2));
  return t.size(2) / gates;
}

// What a training backward pass reads, checked against the activations (time, batch, gates * hidden).
void check_saved(const Tensor& grad_states, const Tensor& activations, const Tensor& per_unit, const Tensor& states,
                 const Tensor& recurrent, int64_t gates, const char* per_unit_name) {
  check_float(grad_states, 3, "grad_states");
  check_float(activations, 3, "activations");
  check_float(per_unit, 3, per_unit_name);
  check_float(states, 3, "states");
  check_float(recurrent, 2, "recurrent");
  const int64_t hidden = hidden_of(activations, gates, "activations");
  const std::vector<int64_t> unit_shape{activations.size(0), activations.size(1), hidden};
  check_shape(grad_states, unit_shape, "grad_states");
  check_shape(per_unit, unit_shape, per_unit_name);
  check_shape(states, unit_shape, "states");
  check_shape(recurrent, {gates * hidden, hidden}, "recurrent");
}

// The SimpleRNN's loops: the same ATen operations, in the same order, as the Python loops of
// models/recurrence.py they stand in for (so the same bits), without Python's interpreter between
// the steps: two operations a step, and the shares of a batch run at once on their cores.

// Forward, in place: `states` (time, batch, hidden) holds z_t = x_t W_ih^T + b_ih + b_hh and
// becomes h_t = tanh(z_t + h_{t-1} W_hh^T), h_{-1} = 0. `recurrent_t` is W_hh^T (hidden, hidden).
void tanh_forward(Tensor states, const Tensor& recurrent_t) {
  check_float(states, 3, "states");
  TORCH_CHECK(recurrent_t.device().is_cpu() && recurrent_t.scalar_type() == at::kFloat && recurrent_t.dim() == 2,
              "recurrent_t must be a float32 CPU tensor of 2 dimensions");
  check_shape(recurrent_t, {states.size(2), states.size(2)}, "recurrent_t");
  const int64_t time = states.size(0);
  if (time == 0) return;
  Tensor previous = states[0];  // (batch, hidden)
  previous.tanh_();
  for (int64_t t = 1; t < time; ++t) {
    Tensor step = states[t];  // (batch, hidden)
    step.addmm_(previous, recurrent_t).tanh_();
    previous = step;
  }
}

// Backward, in place: `grads` (time, batch, hidden) holds dLoss/dh_t and becomes dLoss/dz_t, given
// `slopes` = 1 - h_t^2 and W_hh (hidden, hidden): one addmm and one mul a step, from the last step.
void tanh_backward(Tensor grads, const Tensor& slopes, const Tensor& recurrent) {
  check_float(grads, 3, "grads");
  check_float(slopes, 3, "slopes");
  check_shape(slopes, grads.sizes(), "slopes");
  TORCH_CHECK(recurrent.device().is_cpu() && recurrent.scalar_type() == at::kFloat && recurrent.dim() == 2,
              "recurrent must be a float32 CPU tensor of 2 dimensions");
  check_shape(recurrent, {grads.size(2), grads.size(2)}, "recurrent");
  const int64_t time = grads.size(0);
  if (time == 0) return;
  Tensor next = grads[time - 1];  // (batch, hidden)
  next.mul_(slopes[time - 1]);
  for (int64_t t = time - 2; t >= 0; --t) {
    Tensor step = grads[t];  // (batch, hidden)
    step.addmm_(next, recurrent).mul_(slopes[t]);
    next = step;
  }
}

// One LSTM step for `batch` rows: gate pre-activations (rows of `stride` floats, gates at offsets
// 0, hidden, cell_gate * hidden, output_gate * hidden) plus previous_state (batch, hidden) times
// `recurrent_t` (hidden, 4 * hidden, columns in the rows' gate order) when there is a previous
// state; writes c and h, and (when `activations` is given) the activated gates in PyTorch's order.
void lstm_step(const float* const* gate_rows, const float* previous_state, const float* recurrent_t,
               const float* previous_cell, float* cell, float* state, float* activations, int64_t batch,
               int64_t hidden, int64_t cell_gate, int64_t output_gate) {
  auto finish = [&](int64_t b, int64_t j, int64_t n, const Vec* from_state) {
    const float* row = gate_rows[b];
    auto gate = [&](int64_t index) {
      const Vec value = Vec::loadu(row + index * hidden + j, n);
      return from_state ? value + from_state[index] : value;
    };
    const Vec input = sigmoid(gate(0)), forget = sigmoid(gate(1));
    const Vec candidate = hyperbolic_tangent(gate(cell_gate)), output = sigmoid(gate(output_gate));
    const int64_t at = b * hidden + j;
    const Vec old_cell = previous_cell ? Vec::loadu(previous_cell + at, n) : Vec(0.f);
    const Vec new_cell = forget * old_cell + input * candidate;
    new_cell.store(cell + at, n);
    (output * hyperbolic_tangent(new_cell)).store(state + at, n);
    if (activations) {
      float* out = activations + b * 4 * hidden + j;
      input.store(out, n);
      forget.store(out + hidden, n);
      candidate.store(out + 2 * hidden, n);
      output.store(out + 3 * hidden, n);
    }
  };
  if (previous_state) {
    product::multiply<4>(previous_state, hidden, batch, recurrent_t, 4 * hidden, hidden, hidden, Vec::size(), hidden, finish);
    return;
  }
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; j += Vec::size()) finish(b, j, std::min<int64_t>(Vec::size(), hidden - j), nullptr);
}

// Training forward: `gates` (time, batch, 4 * hidden) holds x_t W_ih^T + b_ih + b_hh (read only).
// Returns the activated gates, which the backward pass reads, and h and c of every step.
std::vector<Tensor> lstm_forward(const Tensor& gates, const Tensor& recurrent_t) {
  check_float(gates, 3, "gates");
  check_float(recurrent_t, 2, "recurrent_t");
  const int64_t time = gates.size(0), batch = gates.size(1), hidden = hidden_of(gates, 4, "gates");
  check_shape(recurrent_t, {hidden, 4 * hidden}, "recurrent_t");
  Tensor activations = at::empty_like(gates);
  Tensor states = at::empty({time, batch, hidden}, gates.options());
  Tensor cells = at::empty({time, batch, hidden}, gates.options());
  std::vector<const float*> rows(batch);
  for (int64_t t = 0; t < time; ++t) {
    const float* step = gates.data_ptr<float>() + t * batch * 4 * hidden;
    for (int64_t b = 0; b < batch; ++b) rows[b] = step + b * 4 * hidden;
    lstm_step(rows.data(), t > 0 ? states.data_ptr<float>() + (t - 1) * batch * hidden : nullptr,
              recurrent_t.data_ptr<float>(), t > 0 ? cells.data_ptr<float>() + (t - 1) * batch * hidden : nullptr,
              cells.data_ptr<float>() + t * batch * hidden, states.data_ptr<float>() + t * batch * hidden,
              activations.data_ptr<float>() + t * batch * 4 * hidden, batch, hidden, 2, 3);
  }
  return {activations, states, cells};
}

// Training backward: from dLoss/dh of every step, dLoss/d(gate pre-activations) of every step and
// dLoss/dW_hh (the input projection's gradients are products autograd makes from the former).
std::vector<Tensor> lstm_backward(const Tensor& grad_states, const Tensor& activations, const Tensor& cells,
                                  const Tensor& states, const Tensor& recurrent) {
  check_saved(grad_states, activations, cells, states, recurrent, 4, "cells");
  const int64_t time = activations.size(0), batch = activations.size(1), hidden = activations.size(2) / 4;
  Tensor grad_gates = at::empty_like(activations);
  Tensor grad_state = at::zeros({batch, hidden}, activations.options());  // from the next step
  Tensor grad_cell = at::zeros({batch, hidden}, activations.options());
  float* carried_state = grad_state.data_ptr<float>();
  float* carried_cell = grad_cell.data_ptr<float>();
  const Vec one(1.f);
  const int64_t width = Vec::size();
  for (int64_t t = time - 1; t >= 0; --t) {
    const int64_t offset = t * batch * hidden;
    const float* gates = activations.data_ptr<float>() + 4 * offset;
    const float* cell = cells.data_ptr<float>() + offset;
    const float* previous_cell = t > 0 ? cells.data_ptr<float>() + offset - batch * hidden : nullptr;
    const float* incoming = grad_states.data_ptr<float>() + offset;
    float* out = grad_gates.data_ptr<float>() + 4 * offset;
    for (int64_t b = 0; b < batch; ++b) {
      const float* row = gates + b * 4 * hidden;
      float* grad_row = out + b * 4 * hidden;
      for (int64_t j = 0; j < hidden; j += width) {
        const int64_t n = std::min(width, hidden - j), at = b * hidden + j;
        const Vec input = Vec::loadu(row + j, n), forget = Vec::loadu(row + hidden + j, n);
        const Vec candidate = Vec::loadu(row + 2 * hidden + j, n), output = Vec::loadu(row + 3 * hidden + j, n);
        const Vec squashed = hyperbolic_tangent(Vec::loadu(cell + at, n));
        const Vec d_state = Vec::loadu(incoming + at, n) + Vec::loadu(carried_state + at, n);
        const Vec d_cell = Vec::loadu(carried_cell + at, n) + d_state * output * (one - squashed * squashed);
        const Vec old_cell = previous_cell ? Vec::loadu(previous_cell + at, n) : Vec(0.f);
        (d_cell * forget).store(carried_cell + at, n);
        (d_cell * candidate * input * (one - input)).store(grad_row + j, n);
        (d_cell * old_cell * forget * (one - forget)).store(grad_row + hidden + j, n);
        (d_cell * input * (one - candidate * candidate)).store(grad_row + 2 * hidden + j, n);
        (d_state * squashed * output * (one - output)).store(grad_row + 3 * hidden + j, n);
      }
    }
    if (t > 0)  // dLoss/dh_{t-1} (batch, hidden) = grad_gates[t] (batch, 4 * hidden) W_hh (4 * hidden, hidden)
      product::plain(out, 4 * hidden, batch, recurrent.data_ptr<float>(), hidden, 4 * hidden, hidden, carried_state,
                     hidden, nullptr);
  }
  Tensor grad_recurrent = time > 1
      ? at::mm(grad_gates.slice(0, 1).reshape({(time - 1) * batch, 4 * hidden}).t(),
               states.slice(0, 0, time - 1).reshape({(time - 1) * batch, hidden}))  // (4 * hidden, hidden)
      : at::zeros({4 * hidden, hidden}, activations.options());
  return {grad_gates, grad_recurrent};
}

// One GRU step for `batch` rows, as PyTorch computes it: r, z = sigmoid(x W_i{r,z}^T + b + h W_h{r,z}^T),
// n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)), h' = n + z (h - n). Gate inputs are rows of
// 3 * hidden floats (x W_i^T plus both biases for r and z, b_in for n); h W_hh^T is `previous`
// (batch, hidden) times `recurrent_t` (hidden, 3 * hidden), none at the first step (h = 0, `previous`
// null). Writes h'; and when given, the activations r, z, n (rows like the inputs) and
// h W_hn^T + b_hn (batch, hidden), which training keeps.
void gru_step(const float* const* gate_rows, const float* previous, const float* recurrent_t, const float* inner_bias,
              float* state, float* const* activation_rows, float* inner, int64_t batch, int64_t hidden) {
  auto finish = [&](int64_t b, int64_t j, int64_t n, const Vec* from_state) {
    const float* row = gate_rows[b];
    const int64_t at = b * hidden + j;
    auto with_state = [&](int64_t index) {
      const Vec value = Vec::loadu(row + index * hidden + j, n);
      return from_state ? value + from_state[index] : value;
    };
    const Vec reset = sigmoid(with_state(0)), update = sigmoid(with_state(1));
    Vec from_previous = Vec::loadu(inner_bias + j, n);
    if (from_state) from_previous = from_previous + from_state[2];
    const Vec candidate = hyperbolic_tangent(Vec::loadu(row + 2 * hidden + j, n) + reset * from_previous);
    const Vec old_state = previous ? Vec::loadu(previous + at, n) : Vec(0.f);
    (candidate + update * (old_state - candidate)).store(state + at, n);
    if (inner) from_previous.store(inner + at, n);
    if (activation_rows) {
      float* out = activation_rows[b] + j;
      reset.store(out, n);
      update.store(out + hidden, n);
      candidate.store(out + 2 * hidden, n);
    }
  };
  if (previous) {
    product::multiply<3>(previous, hidden, batch, recurrent_t, 3 * hidden, hidden, hidden, Vec::size(), hidden, finish);
    return;
  }
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hidden; j += Vec::size()) finish(b, j, std::min<int64_t>(Vec::size(), hidden - j), nullptr);
}

// The GRU (gru_step) for training. `gates` (time, batch, 3 * hidden) holds
// x_t W_ih^T + b_ih + (b_hr, b_hz, 0) (read only). Returns the activations r, z and n, h of every
// step, and `inner`, h W_hn^T + b_hn of every step.
std::vector<Tensor> gru_forward(const Tensor& gates, const Tensor& recurrent_t, const Tensor& inner_bias) {
  check_float(gates, 3, "gates");
  check_float(recurrent_t, 2, "recurrent_t");
  check_float(inner_bias, 1, "inner_bias");
  const int64_t time = gates.size(0), batch = gates.size(1), hidden = hidden_of(gates, 3, "gates");
  check_shape(recurrent_t, {hidden, 3 * hidden}, "recurrent_t");
  check_shape(inner_bias, {hidden}, "inner_bias");
  Tensor activations = at::empty_like(gates);
  Tensor states = at::empty({time, batch, hidden}, gates.options());
  Tensor inner = at::empty({time, batch, hidden}, gates.options());
  std::vector<const float*> rows(batch);
  std::vector<float*> activation_rows(batch);
  for (int64_t t = 0; t < time; ++t) {
    const int64_t offset = t * batch * 3 * hidden;
    for (int64_t b = 0; b < batch; ++b) {
      rows[b] = gates.data_ptr<float>() + offset + b * 3 * hidden;
      activation_rows[b] = activations.data_ptr<float>() + offset + b * 3 * hidden;
    }
    gru_step(rows.data(), t > 0 ? states.data_ptr<float>() + (t - 1) * batch * hidden : nullptr,
             recurrent_t.data_ptr<float>(), inner_bias.data_ptr<float>(), states.data_ptr<float>() + t * batch * hidden, activation_rows.data(),
             inner.data_ptr<float>() + t * batch * hidden, batch, hidden);
  }
  return {activations, states, inner};
}

// Training backward: dLoss/d(gates' input projection) of every step, dLoss/dW_hh and dLoss/db_hn.
std::vector<Tensor> gru_backward(const Tensor& grad_states, const Tensor& activations, const Tensor& inner,
                                 const Tensor& states, const Tensor& recurrent) {
  check_saved(grad_states, activations, inner, states, recurrent, 3, "inner");
  const int64_t time = activations.size(0), batch = activations.size(1), hidden = activations.size(2) / 3;
  const int64_t width = Vec::size();
  Tensor grad_gates = at::empty_like(activations);
  Tensor grad_from_state = at::empty_like(activations);  // through h W_hh^T + (0, 0, b_hn)
  Tensor carried = at::zeros({batch, hidden}, activations.options());  // dLoss/dh_{t-1} from step t
  Tensor direct = at::empty({batch, hidden}, activations.options());  // its part through h' = n + z (h - n)
  const Vec one(1.f);
  for (int64_t t = time - 1; t >= 0; --t) {
    const int64_t offset = t * batch * hidden;
    const float* gates = activations.data_ptr<float>() + 3 * offset;
    const float* kept = inner.data_ptr<float>() + offset;
    const float* previous = t > 0 ? states.data_ptr<float>() + offset - batch * hidden : nullptr;
    const float* incoming = grad_states.data_ptr<float>() + offset;
    const float* from_next = carried.data_ptr<float>();
    float* to_previous = direct.data_ptr<float>();
    float* out = grad_gates.data_ptr<float>() + 3 * offset;
    float* out_state = grad_from_state.data_ptr<float>() + 3 * offset;
    for (int64_t b = 0; b < batch; ++b) {
      const float* row = gates + b * 3 * hidden;
      float* grad_row = out + b * 3 * hidden;
      float* grad_state_row = out_state + b * 3 * hidden;
      for (int64_t j = 0; j < hidden; j += width) {
        const int64_t n = std::min(width, hidden - j), at = b * hidden + j;
        const Vec reset = Vec::loadu(row + j, n), update = Vec::loadu(row + hidden + j, n);
        const Vec candidate = Vec::loadu(row + 2 * hidden + j, n);
        const Vec old_state = previous ? Vec::loadu(previous + at, n) : Vec(0.f);
        const Vec d_state = Vec::loadu(incoming + at, n) + Vec::loadu(from_next + at, n);
        const Vec d_candidate = d_state * (one - update) * (one - candidate * candidate);
        const Vec d_update = d_state * (old_state - candidate) * update * (one - update);
        const Vec d_reset = d_candidate * Vec::loadu(kept + at, n) * reset * (one - reset);
        (d_state * update).store(to_previous + at, n);
        d_reset.store(grad_row + j, n);
        d_update.store(grad_row + hidden + j, n);
        d_candidate.store(grad_row + 2 * hidden + j, n);
        d_reset.store(grad_state_row + j, n);
        d_update.store(grad_state_row + hidden + j, n);
        (d_candidate * reset).store(grad_state_row + 2 * hidden + j, n);
      }
    }
    if (t > 0)  // dLoss/dh_{t-1} (batch, hidden) = direct + grad_from_state[t] (batch, 3 * hidden) W_hh (3 * hidden, hidden)
      product::plain(out_state, 3 * hidden, batch, recurrent.data_ptr<float>(), hidden, 3 * hidden, hidden,
                     carried.data_ptr<float>(), hidden, to_previous);
  }
  Tensor grad_recurrent = time > 1
      ? at::mm(grad_from_state.slice(0, 1).reshape({(time - 1) * batch, 3 * hidden}).t(),
               states.slice(0, 0, time - 1).reshape({(time - 1) * batch, hidden}))  // (3 * hidden, hidden)
      : at::zeros({3 * hidden, hidden}, activations.options());
  Tensor grad_inner_bias = grad_from_state.slice(2, 2 * hidden).sum({0, 1});  // (hidden,)
  return {grad_gates, grad_recurrent, grad_inner_bias};
}

// Predicting from a folded table (models/folded.py): step t's gate inputs are rows table[steps[t, b]].
// Writes every step's h to `outputs` (time, batch, hidden), or, when `outputs` is empty, only each
// text's h at its last token (lengths[b] - 1) to `last` (batch, hidden).
struct Folded {
  Tensor table, recurrent_t, steps, lengths, outputs, last;
  int64_t time, batch, hidden;
  std::vector<const float*> rows;

  Folded(Tensor table_, Tensor recurrent_t_, Tensor steps_, Tensor lengths_, Tensor outputs_, Tensor last_, int64_t gates)
      : table(table_), recurrent_t(recurrent_t_), steps(steps_), lengths(lengths_), outputs(outputs_), last(last_) {
    check_float(table, 2, "table");
    check_float(recurrent_t, 2, "recurrent_t");
    TORCH_CHECK(steps.scalar_type() == at::kLong && steps.dim() == 2 && steps.is_contiguous(), "steps must be contiguous int64 (time, batch)");
    time = steps.size(0), batch = steps.size(1), hidden = recurrent_t.size(0);
    TORCH_CHECK(table.size(1) == gates * hidden && recurrent_t.size(1) == gates * hidden, "table and recurrent_t must have ", gates, " * hidden columns");
    TORCH_CHECK(lengths.scalar_type() == at::kLong && lengths.numel() == batch && lengths.is_contiguous(), "lengths must be int64 (batch,)");
    if (outputs.numel()) {
      check_float(outputs, 3, "outputs");
      TORCH_CHECK(outputs.size(0) == time && outputs.size(1) == batch && outputs.size(2) == hidden, "outputs must be (time, batch, hidden)");
    } else {
      check_float(last, 2, "last");
      TORCH_CHECK(last.size(0) == batch && last.size(1) == hidden, "last must be (batch, hidden)");
    }
    const int64_t vocabulary = table.size(0);
    const int64_t* ids = steps.data_ptr<int64_t>();
    for (int64_t k = 0; k < steps.numel(); ++k) TORCH_CHECK(ids[k] >= 0 && ids[k] < vocabulary, "token id ", ids[k], " outside the table");
    const int64_t* ends = lengths.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) TORCH_CHECK(ends[b] >= 1 && ends[b] <= time, "lengths must be between 1 and ", time);
    rows.resize(batch);
  }
  // Step t's table rows.
  const float* const* rows_at(int64_t t) {
    const int64_t* ids = steps.data_ptr<int64_t>() + t * batch;
    const float* base = table.data_ptr<float>();
    const int64_t width = table.size(1);
    for (int64_t b = 0; b < batch; ++b) rows[b] = base + ids[b] * width;
    return rows.data();
  }
  // Step t's table rows brought towards the cache while the step before runs.
  void prefetch(int64_t t) {
    if (t >= time) return;
    const int64_t* ids = steps.data_ptr<int64_t>() + t * batch;
    const char* base = reinterpret_cast<const char*>(table.data_ptr<float>());
    const int64_t bytes = table.size(1) * static_cast<int64_t>(sizeof(float));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t line = 0; line < bytes; line += 64) __builtin_prefetch(base + ids[b] * bytes + line, 0, 3);
  }
  // Where step t writes h: its slot of `outputs`, else one of two scratch buffers in turn.
  float* state_at(int64_t t, Tensor& scratch) {
    return outputs.numel() ? outputs.data_ptr<float>() + t * batch * hidden : scratch.data_ptr<float>() + (t % 2) * batch * hidden;
  }
  void keep_last(int64_t t, const float* state) {
    if (outputs.numel()) return;
    const int64_t* ends = lengths.data_ptr<int64_t>();
    float* out = last.data_ptr<float>();
    for (int64_t b = 0; b < batch; ++b)
      if (ends[b] - 1 == t) std::copy(state + b * hidden, state + (b + 1) * hidden, out + b * hidden);
  }
};

// Predicting with the SimpleRNN from a folded table: h_t = tanh(table[steps[t]] + h_{t-1} W_hh^T),
// `recurrent_t` W_hh^T (hidden, hidden). tanh is ATen's own vector tanh, as the training loops' tanh_.
template <int Groups>
void tanh_steps(Folded& loop, const float* recurrent_t, Tensor& scratch) {
  const int64_t batch = loop.batch, hidden = loop.hidden, width = Vec::size();
  for (int64_t t = 0; t < loop.time; ++t) {
    float* state = loop.state_at(t, scratch);
    const float* const* rows = loop.rows_at(t);
    loop.prefetch(t + 1);
    auto finish = [&](int64_t b, int64_t j, int64_t n, const Vec* from_state) {
      for (int g = 0; g < Groups; ++g) {
        const int64_t column = j + g * width, count = std::min<int64_t>(width, hidden - column);
        const Vec value = Vec::loadu(rows[b] + column, count);
        (from_state ? value + from_state[g] : value).tanh().store(state + b * hidden + column, count);
      }
    };
    if (t > 0) {
      product::multiply<Groups>(loop.state_at(t - 1, scratch), hidden, batch, recurrent_t, hidden, hidden, hidden,
                                Groups * width, width, finish);
    } else {
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t j = 0; j < hidden; j += Groups * width) finish(b, j, width, nullptr);
    }
    loop.keep_last(t, state);
  }
}

void tanh_folded(Tensor table, Tensor recurrent_t, Tensor steps, Tensor lengths, Tensor outputs, Tensor last) {
  Folded loop(table, recurrent_t, steps, lengths, outputs, last, 1);
  Tensor scratch = at::empty({2, loop.batch, loop.hidden}, table.options());
  if (loop.hidden % (4 * Vec::size()) == 0) {
    tanh_steps<4>(loop, recurrent_t.data_ptr<float>(), scratch);
  } else {
    tanh_steps<1>(loop, recurrent_t.data_ptr<float>(), scratch);
  }
}

void lstm_folded(Tensor table, Tensor recurrent_t, Tensor steps, Tensor lengths, Tensor outputs, Tensor last, int64_t cell_gate) {
  TORCH_CHECK(cell_gate == 2 || cell_gate == 3, "cell_gate must be 2 (PyTorch's order) or 3 (the output gate before it)");
  Folded loop(table, recurrent_t, steps, lengths, outputs, last, 4);
  const int64_t batch = loop.batch, hidden = loop.hidden;
  Tensor scratch = at::empty({2, batch, hidden}, table.options());
  Tensor cells = at::empty({2, batch, hidden}, table.options());
  const int64_t output_gate = cell_gate == 3 ? 2 : 3;
  for (int64_t t = 0; t < loop.time; ++t) {
    float* state = loop.state_at(t, scratch);
    float* cell = cells.data_ptr<float>() + (t % 2) * batch * hidden;
    const float* previous_cell = t > 0 ? cells.data_ptr<float>() + ((t - 1) % 2) * batch * hidden : nullptr;
    const float* const* rows = loop.rows_at(t);
    loop.prefetch(t + 1);
    lstm_step(rows, t > 0 ? loop.state_at(t - 1, scratch) : nullptr, recurrent_t.data_ptr<float>(),
              previous_cell, cell, state, nullptr, batch, hidden, cell_gate, output_gate);
    loop.keep_last(t, state);
  }
}

// Predicting with the GRU (gru_step) from a folded table; `inner_bias` is (0, 0, b_hn).
void gru_folded(Tensor table, Tensor recurrent_t, Tensor inner_bias, Tensor steps, Tensor lengths, Tensor outputs, Tensor last) {
  Folded loop(table, recurrent_t, steps, lengths, outputs, last, 3);
  check_float(inner_bias, 1, "inner_bias");
  const int64_t batch = loop.batch, hidden = loop.hidden;
  check_shape(inner_bias, {3 * hidden}, "inner_bias");
  Tensor scratch = at::empty({2, batch, hidden}, table.options());
  const float* bias = inner_bias.data_ptr<float>() + 2 * hidden;
  for (int64_t t = 0; t < loop.time; ++t) {
    float* state = loop.state_at(t, scratch);
    const float* previous = t > 0 ? loop.state_at(t - 1, scratch) : nullptr;
    const float* const* rows = loop.rows_at(t);
    loop.prefetch(t + 1);
    gru_step(rows, previous, recurrent_t.data_ptr<float>(), bias, state, nullptr, nullptr, batch, hidden);
    loop.keep_last(t, state);
  }
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using release = py::call_guard<py::gil_scoped_release>;  // the shares of a batch run at once
  m.def("tanh_forward", &tanh_forward, release());
  m.def("tanh_backward", &tanh_backward, release());
  m.def("lstm_forward", &lstm_forward, release());
  m.def("lstm_backward", &lstm_backward, release());
  m.def("gru_forward", &gru_forward, release());
  m.def("gru_backward", &gru_backward, release());
  m.def("tanh_folded", &tanh_folded, release());
  m.def("lstm_folded", &lstm_folded, release());
  m.def("gru_folded", &gru_folded, release());
}
