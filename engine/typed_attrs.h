#pragma once
// Typed attributes. Each op family declares, in engine/ops/<family>.h, one struct per kind of attribute set (e.g.
// ConvAttrs) whose fields(f) names every attribute once: f("stride", stride). That list is the only place an
// attribute key is spelled. Both conversions walk it:
//   read_attrs<ConvAttrs>(node)  the generic, string-keyed Attrs of a node -> the struct; a missing required key,
//                                a value of the wrong type, an unknown key or a value the struct's invalid() rejects
//                                is a BadConfig naming the node, its op and the key
//   write_attrs(conv_attrs)      the struct -> Attrs, every field written (the form a node stores and prints)
// Defaults are the struct's member initialisers. Builders, shape rules, kernels, autograd and passes use the
// structs; the string form is handled only generically, never by key (tools/check-attr-keys.sh).
//
// A struct provides:
//   template <class F> void fields(F& f) { f("stride", stride); f.required("channel_offset", channel_offset);
//                                          f("method", method, {{"max", PoolMethod::max}, ...}); }
//   std::string invalid() const;  // "" when the values make sense, else why not ("stride must be >= 1")
// Field types: int, int64_t, bool (stored 0/1), float, double, std::string, and enums with named choices.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "engine/graph.h"

namespace massmap {

template <class E>
using AttrChoices = std::initializer_list<std::pair<const char*, E>>;

// Reads one node's Attrs into a typed struct, field by field (used through read_attrs).
class AttrReader {
 public:
  explicit AttrReader(const Node& node) : node_(node) {}
  void operator()(const char* key, int& field);
  void operator()(const char* key, int64_t& field);
  void operator()(const char* key, bool& field);
  void operator()(const char* key, float& field);
  void operator()(const char* key, double& field);
  void operator()(const char* key, std::string& field);
  template <class E>
  void operator()(const char* key, E& field, AttrChoices<E> choices) {
    std::string name;
    (*this)(key, name);
    if (!node_.attrs.lookup(key)) return;
    std::string names;
    for (const auto& [choice, value] : choices) {
      if (name == choice) {
        field = value;
        return;
      }
      names += (names.empty() ? "" : " or ") + std::string(choice);
    }
    fail(key, "must be " + names + ", is '" + name + "'");
  }
  template <class T>
  void required(const char* key, T& field) {
    if (!node_.attrs.lookup(key)) fail(key, "is missing");
    (*this)(key, field);
  }
  // After fields(): fails on a key no field named, listing the keys the struct knows.
  void reject_unknown_keys() const;
  [[noreturn]] void fail_invalid(const std::string& why) const;

 private:
  const AttrValue* find(const char* key);
  [[noreturn]] void fail(const char* key, const std::string& why) const;
  const Node& node_;
  // The keys fields() named, in its order; a plain vector since kernels read their attributes on every call.
  std::vector<const char*> known_;
};

// Writes a typed struct's fields into Attrs (used through write_attrs).
class AttrWriter {
 public:
  void operator()(const char* key, int64_t field) { attrs_.set(key, field); }
  void operator()(const char* key, int field) { attrs_.set(key, int64_t(field)); }
  void operator()(const char* key, bool field) { attrs_.set(key, int64_t(field ? 1 : 0)); }
  void operator()(const char* key, double field) { attrs_.set(key, field); }
  void operator()(const char* key, float field) { attrs_.set(key, double(field)); }
  void operator()(const char* key, const std::string& field) { attrs_.set(key, field); }
  template <class E>
  void operator()(const char* key, E field, AttrChoices<E> choices) {
    for (const auto& [choice, value] : choices)
      if (value == field) attrs_.set(key, std::string(choice));
  }
  template <class T>
  void required(const char* key, const T& field) {
    (*this)(key, field);
  }
  Attrs take() { return std::move(attrs_); }

 private:
  Attrs attrs_;
};

template <class T>
T read_attrs(const Node& node) {
  T typed;
  AttrReader reader(node);
  typed.fields(reader);
  reader.reject_unknown_keys();
  const std::string why = typed.invalid();
  if (!why.empty()) reader.fail_invalid(why);
  return typed;
}

template <class T>
Attrs write_attrs(T typed) {  // a copy: fields() hands out its members as mutable references
  AttrWriter writer;
  typed.fields(writer);
  return writer.take();
}

// An OpDef::check_attrs for ops whose attributes are a T.
template <class T>
void check_attrs_as(const Node& node) {
  read_attrs<T>(node);
}

}  // namespace massmap
