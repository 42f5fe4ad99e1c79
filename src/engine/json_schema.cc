#include "engine/json_schema.h"

#include <map>
#include <set>

namespace suanli {
namespace {

using ojson = nlohmann::ordered_json;

// Schemas nest at most this many levels (properties, items, anyOf, $ref).
constexpr int kMaxDepth = 32;

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::bitset<256> bytes_of(std::string_view s) {
  std::bitset<256> b;
  for (const char c : s) b.set(static_cast<uint8_t>(c));
  return b;
}

const std::bitset<256> kStringFirst = bytes_of("\"");
const std::bitset<256> kNumberFirst = bytes_of("-0123456789");
const std::bitset<256> kAnyFirst = bytes_of("{[\"-0123456789tfn");

// Whether a value nests arrays / objects more than `limit` levels, found
// without recursion: dump() and comparisons recurse once per level, so a
// const or enum value of a few hundred KB of brackets would overflow the
// stack before any other limit saw it.
bool nests_deeper_than(const ojson& v, int limit) {
  std::vector<std::pair<const ojson*, int>> stack{{&v, 0}};
  while (!stack.empty()) {
    const auto [p, d] = stack.back();
    stack.pop_back();
    if (!p->is_structured()) continue;
    if (d + 1 > limit) return true;
    for (const ojson& c : *p) stack.emplace_back(&c, d + 1);
  }
  return false;
}

}  // namespace

namespace {

// First bytes of a node (through anyOf chains), with a guard against a
// $ref cycle that never reaches a value.
bool first_bytes(const std::vector<SchemaNode>& nodes, int32_t id, int depth, std::bitset<256>* out) {
  if (depth > 64) return false;
  const SchemaNode& n = nodes[static_cast<size_t>(id)];
  if (n.kind != SchemaNode::Kind::kAnyOf) {
    *out |= n.first;
    return true;
  }
  for (int32_t a : n.alts) {
    if (!first_bytes(nodes, a, depth + 1, out)) return false;
  }
  return true;
}

}  // namespace

// ---- compiling ----

class SchemaCompiler {
 public:
  explicit SchemaCompiler(const ojson& root) : root_(root) {}

  Expected<std::shared_ptr<const JsonSchema>> run() {
    auto s = std::make_shared<JsonSchema>();
    out_ = s.get();
    out_->nodes_.emplace_back();  // the root's slot
    SUANLI_RETURN_IF_ERROR(fill(0, root_, "#", 0));
    const SchemaNode& r = out_->nodes_[0];
    const bool object_root =
        r.kind == SchemaNode::Kind::kObject || (r.kind == SchemaNode::Kind::kAny && r.first == bytes_of("{"));
    if (!object_root) return InvalidArgument("the schema's root must be an object (type: object)");
    // An anyOf's first bytes are its alternatives' (through $ref chains),
    // which must not overlap: the automaton picks the alternative by the
    // value's first byte.
    std::vector<SchemaNode>& nodes = out_->nodes_;
    for (SchemaNode& n : nodes) {
      if (n.kind != SchemaNode::Kind::kAnyOf) continue;
      std::bitset<256> seen;
      for (int32_t a : n.alts) {
        std::bitset<256> f;
        if (!first_bytes(nodes, a, 0, &f)) return InvalidArgument("json_schema: a $ref cycle never reaches a value");
        if ((seen & f).any()) {
          return InvalidArgument(
              "json_schema: anyOf / oneOf / type lists are supported only when the alternatives start differently "
              "(e.g. a string or null; not two objects)");
        }
        seen |= f;
      }
      n.first = seen;
    }
    return std::shared_ptr<const JsonSchema>(std::move(s));
  }

 private:
  Status bad(const std::string& where, const std::string& what) {
    return InvalidArgument("json_schema at " + where + ": " + what);
  }

  Expected<int32_t> add(const ojson& s, const std::string& where, int depth) {
    if (static_cast<int>(out_->nodes_.size()) >= JsonSchema::kMaxNodes) {
      return InvalidArgument("json_schema has too many parts (at most " + std::to_string(JsonSchema::kMaxNodes) + ")");
    }
    const int32_t id = static_cast<int32_t>(out_->nodes_.size());
    out_->nodes_.emplace_back();
    SUANLI_RETURN_IF_ERROR(fill(id, s, where, depth));
    return id;
  }

  // A $ref's node: compiled once (a recursive schema refers to itself).
  Expected<int32_t> ref(const std::string& r, const std::string& where, int depth) {
    if (auto it = refs_.find(r); it != refs_.end()) return it->second;
    const ojson* target = nullptr;
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      const std::string p = prefix;
      if (r.rfind(p, 0) != 0 || !root_.is_object()) continue;
      const auto defs = root_.find(p.substr(2, p.size() - 3));  // never operator[] on a const json
      if (defs == root_.end() || !defs->is_object()) continue;
      const auto def = defs->find(r.substr(p.size()));
      if (def != defs->end()) target = &*def;
    }
    if (r == "#") target = &root_;
    if (!target) return bad(where, "$ref '" + r + "' is not #, #/$defs/NAME or #/definitions/NAME of this schema");
    if (static_cast<int>(out_->nodes_.size()) >= JsonSchema::kMaxNodes) {
      return InvalidArgument("json_schema has too many parts");
    }
    if (r == "#") return refs_[r] = 0;
    const int32_t id = static_cast<int32_t>(out_->nodes_.size());
    out_->nodes_.emplace_back();
    refs_[r] = id;
    SUANLI_RETURN_IF_ERROR(fill(id, *target, r, depth));
    return id;
  }

  Status fill(int32_t id, const ojson& s, const std::string& where, int depth) {
    if (depth > kMaxDepth) return bad(where, "nested too deeply");
    SchemaNode n;
    if (s.is_boolean()) {
      if (!s.get<bool>()) return bad(where, "the schema false admits no value");
      n.first = kAnyFirst;
      out_->nodes_[id] = std::move(n);
      return Status::Ok();
    }
    if (!s.is_object()) return bad(where, "a schema must be an object");
    static const std::set<std::string> kKnown = {
        "type", "properties", "required", "items", "minItems", "maxItems", "enum", "const", "anyOf", "oneOf",
        "$ref", "$defs", "definitions", "additionalProperties", "title", "description", "default", "examples",
        "$schema", "$id", "$comment", "format", "nullable", "strict"};
    for (const auto& [k, v] : s.items()) {
      if (!kKnown.count(k)) return bad(where, "'" + k + "' is not supported (it could not be enforced)");
    }
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) return bad(where, "$ref must be a string");
      SUANLI_ASSIGN_OR_RETURN(int32_t target, ref(s["$ref"].get<std::string>(), where, depth + 1));
      // This node becomes a one-way anyOf to the target (it may not be
      // compiled yet when the reference is recursive).
      n.kind = SchemaNode::Kind::kAnyOf;
      n.alts = {target};
      out_->nodes_[id] = std::move(n);
      return Status::Ok();
    }
    if (s.contains("const") || s.contains("enum")) {
      n.kind = SchemaNode::Kind::kEnum;
      // The value is emitted as one literal, but it still counts against
      // the nesting limit of the schema it sits in.
      // (enum's own list is one more level.)
      if (s.contains("const") ? nests_deeper_than(s["const"], kMaxDepth + 1 - depth)
                              : nests_deeper_than(s["enum"], kMaxDepth + 2 - depth)) {
        return bad(where, "nested too deeply");
      }
      if (s.contains("const")) {
        n.literals.push_back(s["const"].dump());
      } else {
        if (!s["enum"].is_array() || s["enum"].empty()) return bad(where, "enum must be a non-empty list");
        for (const ojson& v : s["enum"]) n.literals.push_back(v.dump());
      }
      if (n.literals.size() > JsonSchema::kMaxChoices) return bad(where, "at most 64 enum values");
      for (const std::string& l : n.literals) n.first.set(static_cast<uint8_t>(l[0]));
      out_->nodes_[id] = std::move(n);
      return Status::Ok();
    }
    for (const char* k : {"anyOf", "oneOf"}) {
      if (!s.contains(k)) continue;
      if (!s[k].is_array() || s[k].empty()) return bad(where, std::string(k) + " must be a non-empty list");
      n.kind = SchemaNode::Kind::kAnyOf;
      for (size_t i = 0; i < s[k].size(); ++i) {
        SUANLI_ASSIGN_OR_RETURN(int32_t a, add(s[k][i], where + "/" + k + "/" + std::to_string(i), depth + 1));
        n.alts.push_back(a);
      }
      out_->nodes_[id] = std::move(n);
      return Status::Ok();
    }
    const ojson* type = s.contains("type") ? &s["type"] : nullptr;
    if (type && type->is_array()) {
      // A list of types: one alternative per type, the rest of the schema with each.
      if (type->empty()) return bad(where, "an empty list of types admits no value");
      n.kind = SchemaNode::Kind::kAnyOf;
      for (const ojson& t : *type) {
        ojson one = s;
        one["type"] = t;
        SUANLI_ASSIGN_OR_RETURN(int32_t a, add(one, where, depth + 1));
        n.alts.push_back(a);
      }
      out_->nodes_[id] = std::move(n);
      return Status::Ok();
    }
    std::string t;
    if (type) {
      if (!type->is_string()) return bad(where, "type must be a string or a list of strings");
      t = type->get<std::string>();
    } else if (s.contains("properties")) {
      t = "object";
    } else if (s.contains("items")) {
      t = "array";
    }
    if (t.empty()) {
      n.first = kAnyFirst;
    } else if (t == "string") {
      n.first = kStringFirst;
    } else if (t == "number" || t == "integer") {
      n.first = kNumberFirst;
      n.integer = t == "integer";
    } else if (t == "boolean" || t == "null") {
      n.kind = SchemaNode::Kind::kEnum;
      n.literals = t == "null" ? std::vector<std::string>{"null"} : std::vector<std::string>{"true", "false"};
      for (const std::string& l : n.literals) n.first.set(static_cast<uint8_t>(l[0]));
    } else if (t == "object") {
      n.first = bytes_of("{");
      if (s.contains("properties")) {
        const ojson& props = s["properties"];
        if (!props.is_object()) return bad(where, "properties must be an object");
        if (props.size() > JsonSchema::kMaxChoices) return bad(where, "at most 64 properties per object");
        n.kind = SchemaNode::Kind::kObject;
        for (const auto& [k, v] : props.items()) {
          n.keys.push_back(ojson(k).dump());
          SUANLI_ASSIGN_OR_RETURN(int32_t p, add(v, where + "/properties/" + k, depth + 1));
          n.props.push_back(p);
          n.required.push_back(0);
        }
      }
      if (s.contains("required")) {
        if (!s["required"].is_array()) return bad(where, "required must be a list");
        for (const ojson& r : s["required"]) {
          const std::string key = r.is_string() ? ojson(r.get<std::string>()).dump() : "";
          size_t j = 0;
          while (j < n.keys.size() && n.keys[j] != key) ++j;
          if (j == n.keys.size()) {
            return bad(where, "required " + (r.is_string() ? key : std::string("holds a non-string")) +
                                  (r.is_string() ? " is not one of its properties" : ""));
          }
          n.required[j] = 1;
        }
      }
    } else if (t == "array") {
      n.kind = SchemaNode::Kind::kArray;
      n.first = bytes_of("[");
      if (s.contains("items")) {
        SUANLI_ASSIGN_OR_RETURN(n.items, add(s["items"], where + "/items", depth + 1));
      } else {
        SUANLI_ASSIGN_OR_RETURN(n.items, add(ojson(true), where + "/items", depth + 1));
      }
      for (const char* k : {"minItems", "maxItems"}) {
        if (!s.contains(k)) continue;
        if (!s[k].is_number_unsigned() || s[k].get<uint64_t>() > (1u << 30)) {
          return bad(where, std::string(k) + " must be a non-negative integer");
        }
        (k[1] == 'i' ? n.min_items : n.max_items) = static_cast<int32_t>(s[k].get<uint64_t>());
      }
      if (n.min_items > n.max_items) return bad(where, "minItems exceeds maxItems");
    } else {
      return bad(where, "unknown type '" + t + "'");
    }
    out_->nodes_[id] = std::move(n);
    return Status::Ok();
  }

  const ojson& root_;
  JsonSchema* out_ = nullptr;
  std::map<std::string, int32_t> refs_;
};


Expected<std::shared_ptr<const JsonSchema>> JsonSchema::compile(const ojson& schema) {
  SchemaCompiler c(schema);
  return c.run();
}

std::shared_ptr<const JsonSchema> JsonSchema::any_object() {
  static const std::shared_ptr<const JsonSchema> s = [] {
    auto j = std::make_shared<JsonSchema>();
    j->nodes_.emplace_back();
    j->nodes_[0].first = bytes_of("{");
    return std::shared_ptr<const JsonSchema>(std::move(j));
  }();
  return s;
}

// ---- the automaton ----

SchemaAutomaton::SchemaAutomaton(const JsonSchema* schema) : schema_(schema) {
  frames_[0] = Frame{};
  depth_ = 1;
}

bool SchemaAutomaton::push(uint8_t c) {
  SchemaAutomaton s = *this;
  if (!s.step(c)) return false;
  *this = s;
  return true;
}

bool SchemaAutomaton::push(std::string_view bytes) {
  SchemaAutomaton s = *this;
  for (const char ch : bytes) {
    if (!s.step(static_cast<uint8_t>(ch))) return false;
  }
  *this = s;
  return true;
}

uint64_t SchemaAutomaton::allowed_keys(const Frame& f) const {
  const SchemaNode& n = schema_->node(f.node);
  uint64_t m = 0;
  for (size_t j = f.cursor; j < n.keys.size(); ++j) {
    m |= uint64_t{1} << j;
    if (n.required[j]) break;
  }
  return m;
}

bool SchemaAutomaton::required_left(const Frame& f) const {
  const SchemaNode& n = schema_->node(f.node);
  for (size_t j = f.cursor; j < n.keys.size(); ++j) {
    if (n.required[j]) return true;
  }
  return false;
}

void SchemaAutomaton::end_value() {
  ws_ = 0;
  --depth_;
}

bool SchemaAutomaton::push_child(int32_t node, uint8_t c) {
  if (depth_ >= kMaxFrames) return false;
  Frame& f = frames_[depth_++];
  f = Frame{};
  f.node = static_cast<int16_t>(node);
  return start_value(f, c);
}

bool SchemaAutomaton::start_value(Frame& f, uint8_t c) {
  ws_ = 0;
  // Through anyOf / $ref: the alternative that starts with c.
  for (int hops = 0; schema_->node(f.node).kind == SchemaNode::Kind::kAnyOf; ++hops) {
    if (hops > 64) return false;
    const SchemaNode& n = schema_->node(f.node);
    int32_t pick = -1;
    for (int32_t a : n.alts) {
      if (schema_->node(a).first.test(c)) pick = a;  // first sets filled at compile
    }
    if (pick < 0) return false;
    f.node = static_cast<int16_t>(pick);
  }
  const SchemaNode& n = schema_->node(f.node);
  if (!n.first.test(c)) return false;
  switch (n.kind) {
    case SchemaNode::Kind::kAny:
      inner_ = JsonAutomaton(true);
      if (!inner_.push(c)) return false;
      f.phase = kInAny;
      if (inner_.complete()) end_value();
      return true;
    case SchemaNode::Kind::kEnum: {
      mask_ = 0;
      for (size_t j = 0; j < n.literals.size(); ++j) {
        if (static_cast<uint8_t>(n.literals[j][0]) == c) mask_ |= uint64_t{1} << j;
      }
      pos_ = 1;
      f.phase = kInEnum;
      bool full = false, longer = false;
      for (size_t j = 0; j < n.literals.size(); ++j) {
        if (!((mask_ >> j) & 1)) continue;
        (n.literals[j].size() == 1 ? full : longer) = true;
      }
      if (full && !longer) end_value();
      return true;
    }
    case SchemaNode::Kind::kObject:
      f.phase = kObjOpen;
      f.cursor = 0;
      return true;
    case SchemaNode::Kind::kArray:
      f.phase = kArrOpen;
      f.count = 0;
      return true;
    default: return false;
  }
}

bool SchemaAutomaton::start_key(Frame& f) {
  mask_ = allowed_keys(f);
  if (mask_ == 0) return false;
  pos_ = 1;  // the opening quote
  ws_ = 0;
  f.phase = kObjKey;
  return true;
}

bool SchemaAutomaton::step(uint8_t c) {
  if (depth_ == 0) {  // the root object is closed: trailing whitespace only
    return is_ws(c) && whitespace_step(c, &ws_, JsonAutomaton::kMaxWhitespace);
  }
  Frame& f = frames_[depth_ - 1];
  const SchemaNode& n = schema_->node(f.node);
  switch (f.phase) {
    case kInAny: {
      if (n.integer && inner_.in_top_number() && (c == '.' || c == 'e' || c == 'E')) return false;
      if (inner_.push(c)) {
        if (inner_.complete()) end_value();
        return true;
      }
      if (!inner_.can_end()) return false;
      end_value();
      return step(c);  // the number ended before c
    }
    case kInEnum: {
      uint64_t next = 0;
      bool full_now = false;
      for (size_t j = 0; j < n.literals.size(); ++j) {
        if (!((mask_ >> j) & 1)) continue;
        const std::string& l = n.literals[j];
        if (l.size() == pos_) full_now = true;
        if (l.size() > pos_ && static_cast<uint8_t>(l[pos_]) == c) next |= uint64_t{1} << j;
      }
      if (next == 0) {
        if (!full_now) return false;
        end_value();
        return step(c);  // the literal ended before c (a number such as 1 vs 12)
      }
      mask_ = next;
      ++pos_;
      bool full = false, longer = false;
      for (size_t j = 0; j < n.literals.size(); ++j) {
        if (!((mask_ >> j) & 1)) continue;
        (n.literals[j].size() == pos_ ? full : longer) = true;
      }
      if (full && !longer) end_value();
      return true;
    }
    case kObjKey: {
      uint64_t next = 0;
      for (size_t j = 0; j < n.keys.size(); ++j) {
        if (((mask_ >> j) & 1) && n.keys[j].size() > pos_ && static_cast<uint8_t>(n.keys[j][pos_]) == c) {
          next |= uint64_t{1} << j;
        }
      }
      if (next == 0) return false;
      mask_ = next;
      ++pos_;
      for (size_t j = 0; j < n.keys.size(); ++j) {
        if (((mask_ >> j) & 1) && n.keys[j].size() == pos_) {  // a key's closing quote: unambiguous
          f.cursor = static_cast<uint16_t>(j + 1);
          f.phase = kObjColon;
          return true;
        }
      }
      return true;
    }
    default: break;
  }
  if (is_ws(c)) return whitespace_step(c, &ws_, JsonAutomaton::kMaxWhitespace);
  switch (f.phase) {
    case kValue: return start_value(f, c);
    case kObjOpen:
    case kObjComma:
      if (c == '"') return start_key(f);
      if (c == '}' && f.phase == kObjOpen && !required_left(f)) {
        end_value();
        return true;
      }
      return false;
    case kObjColon:
      if (c != ':') return false;
      ws_ = 0;
      f.phase = kObjAfter;
      if (depth_ >= kMaxFrames) return false;
      frames_[depth_] = Frame{};
      frames_[depth_].node = static_cast<int16_t>(n.props[f.cursor - 1]);
      ++depth_;
      return true;
    case kObjAfter:
      if (c == ',' && allowed_keys(f) != 0) {
        ws_ = 0;
        f.phase = kObjComma;
        return true;
      }
      if (c == '}' && !required_left(f)) {
        end_value();
        return true;
      }
      return false;
    case kArrOpen:
    case kArrComma:
      if (c == ']' && f.phase == kArrOpen && n.min_items == 0) {
        end_value();
        return true;
      }
      if (f.count >= n.max_items || f.count == 0xffff) return false;
      ++f.count;
      f.phase = kArrAfter;
      return push_child(n.items, c);
    case kArrAfter:
      if (c == ',' && f.count < n.max_items) {
        ws_ = 0;
        f.phase = kArrComma;
        return true;
      }
      if (c == ']' && f.count >= n.min_items) {
        end_value();
        return true;
      }
      return false;
    default: return false;
  }
}

}  // namespace suanli
