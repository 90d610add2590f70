#include "fakequant/from_config.h"

#include <cmath>
#include <set>
#include <stdexcept>

namespace qv::fakequant {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {
      "mobilenet_v1", "proxylessnas_mobile14", "proxylessnas_mobile14_hadamard", "mobilenet_v2",
      "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"};
  return names;
}

QuantKind quant_kind(config::Scheme s) {
  switch (s) {
    case config::Scheme::fp32: return QuantKind::none;
    case config::Scheme::brevitas: return QuantKind::brevitas;
    case config::Scheme::pact: return QuantKind::pact;
    case config::Scheme::tqt: return QuantKind::tqt;
  }
  return QuantKind::none;
}

WeightQuant weight_quant(const config::QuantConfig& c, const config::WeightQuant& w) {
  return WeightQuant{quant_kind(c.scheme), w.bits, w.granularity == config::Granularity::per_channel, w.init, w.std_factor};
}

ActQuant act_quant(const config::QuantConfig& c, const config::ActQuant& a) {
  ActQuant q;
  q.kind = quant_kind(c.scheme);
  q.bits = a.bits;
  q.is_signed = a.is_signed;
  q.rounding = a.rounding;
  q.init_clip = a.clip_init == config::ClipInit::const_value ? a.init_value : 6.0;  // data-driven inits: calibration sets them
  q.power_of_two = a.power_of_two;
  return q;
}

ModelQuant model_quant(const config::QuantConfig& c) {
  ModelQuant q;
  q.first_conv = weight_quant(c, c.first_layer_weight);
  q.conv = weight_quant(c, c.conv_weight);
  q.depthwise = weight_quant(c, c.depthwise_weight);
  q.linear = weight_quant(c, c.linear_weight);
  q.act = act_quant(c, c.activation);
  q.signed_act = act_quant(c, c.signed_activation);
  return q;
}

std::shared_ptr<NetworkImpl> make_model(const std::string& name_in, const ModelQuant& q, const ModelOptions& o) {
  const std::string name = name_in == "vgg" ? "vgg16" : name_in;
  if (name == "mobilenet_v1") return make_mobilenet_v1(q, o);
  if (name == "mobilenet_v2") return make_mobilenet_v2(q, o);
  if (name == "proxylessnas_mobile14") return make_proxylessnas_mobile14(q, o, false);
  if (name == "proxylessnas_mobile14_hadamard") return make_proxylessnas_mobile14(q, o, true);
  if (name.rfind("vgg", 0) == 0) {
    const bool bn = name.size() > 3 && name.substr(name.size() - 3) == "_bn";
    const std::string depth = name.substr(3, name.size() - 3 - (bn ? 3 : 0));
    if (depth == "11" || depth == "13" || depth == "16" || depth == "19") return make_vgg(std::stoi(depth), bn, q, o);
  }
  std::string known;
  for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown model '" + name_in + "' (known: " + known + "; vgg means vgg16)");
}

namespace {

void set_init(QActImpl& a, double clip) {
  torch::NoGradGuard no_grad;
  switch (a.aq.kind) {
    case QuantKind::none: break;
    case QuantKind::brevitas: a.value.fill_(std::log2(clip)); break;
    case QuantKind::pact:
      a.clip_hi.fill_(clip);
      a.clip_lo.fill_(a.aq.is_signed ? -clip : 0.0);
      break;
    case QuantKind::tqt: a.log2_t.fill_(std::log2(clip)); break;
  }
}

}  // namespace

std::vector<std::string> apply_layer_rules(NetworkImpl& net, const config::QuantConfig& c) {
  std::vector<std::string> log;
  if (c.scheme == config::Scheme::fp32) return log;
  bool first_conv = true;
  std::set<const QActImpl*> seen;
  for (const GraphNode& n : net.graph.nodes) {
    config::LayerKind kind;
    WeightQuant* wq = nullptr;
    if (n.op == GraphOp::conv) {
      const QConv2dImpl& conv = *n.conv;
      const int64_t in = conv.weight.size(1) * conv.groups;
      kind = first_conv ? config::LayerKind::first_conv
             : (conv.groups > 1 && conv.groups == in) ? config::LayerKind::depthwise_conv
                                                      : config::LayerKind::conv;
      first_conv = false;
      wq = &n.conv.ptr()->wq;
    } else if (n.op == GraphOp::linear) {
      kind = config::LayerKind::linear;
      wq = &n.linear.ptr()->wq;
    } else if (n.op == GraphOp::act) {
      if (!seen.insert(n.act.get()).second) continue;  // a shared quantizer takes the rules of its first use
      QActImpl& a = *n.act.ptr();
      kind = a.aq.is_signed || a.fn == ActFn::identity ? config::LayerKind::signed_activation : config::LayerKind::activation;
      const config::ResolvedLayer r = config::resolve(c, n.name, kind);
      if (!r.quantize) throw std::invalid_argument(n.name + ": a rule leaves this layer in float, which has no integer form");
      if (r.rules.empty()) continue;
      const ActQuant before = a.aq;
      const ActQuant after = act_quant(c, *r.act);
      a.aq = after;
      if (after.init_clip != before.init_clip || after.is_signed != before.is_signed) set_init(a, after.init_clip);
      log.push_back(n.name + ": activation " + std::to_string(before.bits) + " -> " + std::to_string(after.bits) + " bits" +
                    (after.is_signed ? ", signed" : ", unsigned"));
      continue;
    } else {
      continue;
    }
    const config::ResolvedLayer r = config::resolve(c, n.name, kind);
    if (!r.quantize) throw std::invalid_argument(n.name + ": a rule leaves this layer in float, which has no integer form");
    const WeightQuant after = weight_quant(c, *r.weight);
    if (after.bits != wq->bits || after.per_channel != wq->per_channel)
      log.push_back(n.name + ": weights " + std::to_string(wq->bits) + " -> " + std::to_string(after.bits) + " bits, " +
                    (after.per_channel ? "per channel" : "per tensor"));
    *wq = after;
  }
  return log;
}

std::shared_ptr<NetworkImpl> build_model(const std::string& name, const config::QuantConfig& c, const ModelOptions& o,
                                         std::vector<std::string>* rule_log) {
  auto net = make_model(name, model_quant(c), o);
  auto log = apply_layer_rules(*net, c);
  if (rule_log) *rule_log = std::move(log);
  return net;
}

}  // namespace qv::fakequant
