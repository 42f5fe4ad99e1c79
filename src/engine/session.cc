#include "suanli/session.h"

#include <algorithm>

namespace suanli {

Session::Session(Model& model, KvCache& kv) : model_(model), kv_(kv) {}

Session::~Session() { reset(); }

void Session::reset() {
  kv_.release_all(table_);
  tokens_.clear();
  logits_.clear();
}

Status Session::run(std::span<const int32_t> toks, int64_t n_past) {
  const int64_t chunk = model_.max_batch_tokens();
  logits_.resize(model_.n_vocab());
  for (size_t start = 0; start < toks.size(); start += chunk) {
    const int64_t n = std::min<int64_t>(chunk, toks.size() - start);
    const int64_t past = n_past + static_cast<int64_t>(start);
    batch_.clear();
    batch_.tokens.assign(toks.begin() + start, toks.begin() + start + n);
    for (int64_t j = 0; j < n; ++j) {
      batch_.positions.push_back(static_cast<int32_t>(past + j));
      batch_.slots.push_back(kv_.slot(table_, past + j));
    }
    Batch::Seq s;
    s.n_tokens = static_cast<int32_t>(n);
    s.n_past = static_cast<int32_t>(past);
    s.block_table = table_;
    batch_.seqs.push_back(std::move(s));
    batch_.logits_for.push_back(static_cast<int32_t>(n - 1));
    SUANLI_RETURN_IF_ERROR(model_.forward(batch_, kv_, logits_.data()));
  }
  return Status::Ok();
}

Status Session::set_prompt(std::span<const int32_t> tokens) {
  if (tokens.empty()) return InvalidArgument("empty prompt");
  size_t common = 0;
  while (common < tokens_.size() && common < tokens.size() && tokens_[common] == tokens[common]) ++common;
  // The last prompt token is always recomputed: its logits are the output.
  if (common == tokens.size()) --common;
  SUANLI_RETURN_IF_ERROR(kv_.reserve(table_, static_cast<int64_t>(tokens.size())));
  tokens_.assign(tokens.begin(), tokens.begin() + common);
  reused_ = static_cast<int64_t>(common);
  Status s = run(tokens.subspan(common), static_cast<int64_t>(common));
  if (!s.ok()) {
    reset();
    return s;
  }
  tokens_.assign(tokens.begin(), tokens.end());
  return Status::Ok();
}

Status Session::append(int32_t token) {
  SUANLI_RETURN_IF_ERROR(kv_.reserve(table_, static_cast<int64_t>(tokens_.size()) + 1));
  const int32_t one[1] = {token};
  SUANLI_RETURN_IF_ERROR(run(one, static_cast<int64_t>(tokens_.size())));
  tokens_.push_back(token);
  return Status::Ok();
}

Status Session::append_all(std::span<const int32_t> tokens, std::vector<float>* rows) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0 || n > model_.max_batch_tokens()) return InvalidArgument("append_all takes 1 to max_batch_tokens tokens");
  const int64_t past = static_cast<int64_t>(tokens_.size());
  SUANLI_RETURN_IF_ERROR(kv_.reserve(table_, past + n));
  batch_.clear();
  batch_.tokens.assign(tokens.begin(), tokens.end());
  for (int64_t j = 0; j < n; ++j) {
    batch_.positions.push_back(static_cast<int32_t>(past + j));
    batch_.slots.push_back(kv_.slot(table_, past + j));
    batch_.logits_for.push_back(static_cast<int32_t>(j));
  }
  Batch::Seq s;
  s.n_tokens = static_cast<int32_t>(n);
  s.n_past = static_cast<int32_t>(past);
  s.block_table = table_;
  batch_.seqs.push_back(std::move(s));
  rows->resize(static_cast<size_t>(n * model_.n_vocab()));
  SUANLI_RETURN_IF_ERROR(model_.forward(batch_, kv_, rows->data()));
  logits_.assign(rows->end() - model_.n_vocab(), rows->end());
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  return Status::Ok();
}

void Session::truncate(int64_t n) {
  if (n < static_cast<int64_t>(tokens_.size())) tokens_.resize(static_cast<size_t>(std::max<int64_t>(0, n)));
}

}  // namespace suanli
