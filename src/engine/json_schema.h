// JSON Schema-constrained generation (response_format json_schema): a subset
// of JSON Schema compiled into nodes, and a byte-level automaton that accepts
// exactly the JSON texts of an object valid under the schema, within
// JsonAutomaton's limits (json_constraint.h).
//
// The subset, chosen so that every accepted text validates (anything the
// automaton cannot enforce is refused at compile time, never ignored):
//   type (string, number, integer, boolean, null, object, array, or a list
//   of these), properties, required, items, minItems, maxItems, enum, const,
//   anyOf / oneOf whose alternatives start with different bytes (Optional[T]
//   is anyOf [T, null]), $ref to #/$defs/... or #/definitions/... (recursion
//   allowed), additionalProperties (only the listed properties are
//   generated, which any value of it allows), and annotations (title,
//   description, default, examples, $schema, $id, $comment, format is NOT
//   one: it is refused).
// Properties are generated in the schema's order, as OpenAI's structured
// outputs do: each optional one may be skipped, each required one must come.
// The root must be an object.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/json_constraint.h"
#include "suanli/status.h"

namespace suanli {

struct SchemaNode {
  enum class Kind : uint8_t {
    kAny,     // a free JSON value starting with a byte of `first`
    kObject,  // keys / props / required, in order
    kArray,   // items, min_items..max_items
    kEnum,    // one of `literals` (compact JSON texts)
    kAnyOf,   // one of `alts`, told apart by the first byte
  };
  Kind kind = Kind::kAny;
  std::bitset<256> first;  // the bytes a value of this node can start with (kAnyOf: its alternatives')
  bool integer = false;    // kAny number: no fraction or exponent
  std::vector<std::string> keys;  // kObject: each key as JSON text, quotes included
  std::vector<int32_t> props;     // kObject: the node of each key's value
  std::vector<uint8_t> required;  // kObject
  int32_t items = -1;             // kArray: node of the items
  int32_t min_items = 0, max_items = 1 << 30;
  std::vector<std::string> literals;  // kEnum
  std::vector<int32_t> alts;          // kAnyOf
};

class JsonSchema {
 public:
  static constexpr int kMaxNodes = 1024;
  static constexpr int kMaxChoices = 64;  // properties per object, enum values

  // An InvalidArgument naming the unsupported or malformed part.
  static Expected<std::shared_ptr<const JsonSchema>> compile(const nlohmann::ordered_json& schema);
  // Any JSON object (response_format json_object).
  static std::shared_ptr<const JsonSchema> any_object();

  const SchemaNode& node(int32_t i) const { return nodes_[static_cast<size_t>(i)]; }

 private:
  friend class SchemaCompiler;
  std::vector<SchemaNode> nodes_;  // the root is node 0
};

class SchemaAutomaton {
 public:
  static constexpr int kMaxFrames = 32;

  // `schema` must outlive the automaton (JsonConstraint holds it).
  explicit SchemaAutomaton(const JsonSchema* schema);
  bool push(uint8_t c);               // false (state unchanged) if refused
  bool push(std::string_view bytes);  // all or none
  bool complete() const { return depth_ == 0; }

 private:
  enum Phase : uint8_t {
    kValue,     // a value of the frame's node is expected
    kInAny,     // inside a free value (inner_)
    kInEnum,    // inside an enum literal (mask_, pos_)
    kObjOpen,   // after '{'
    kObjKey,    // inside a key (mask_: candidate properties, pos_)
    kObjColon,  // after a key
    kObjAfter,  // after a property's value
    kObjComma,  // after ',' in an object
    kArrOpen,   // after '['
    kArrAfter,  // after an item
    kArrComma,  // after ',' in an array
  };
  struct Frame {
    int16_t node = 0;
    Phase phase = kValue;
    uint16_t cursor = 0;  // object: properties before it are done or skipped
    uint16_t count = 0;   // array: items started
  };
  bool step(uint8_t c);
  bool start_value(Frame& f, uint8_t c);
  bool start_key(Frame& f);
  bool push_child(int32_t node, uint8_t c);
  // The top frame's value is complete: pop it.
  void end_value();
  // Properties a key may name now: from the cursor up to the first required.
  uint64_t allowed_keys(const Frame& f) const;
  bool required_left(const Frame& f) const;

  const JsonSchema* schema_;
  Frame frames_[kMaxFrames];
  uint8_t depth_ = 0;
  uint8_t ws_ = 0;
  uint16_t pos_ = 0;   // bytes matched of the key / enum literal
  uint64_t mask_ = 0;  // candidate keys / literals
  JsonAutomaton inner_{true};
};

}  // namespace suanli
