#!/usr/bin/env bash
# Attribute keys and op names are spelled once, in the op family's header engine/ops/<family>.h: a key in its typed
# struct's fields() list, an op name in its ops:: constant. Code that builds, runs or rewrites graphs uses those
# (read_attrs / write_attrs, ops::conv2d). The string form is handled only generically (engine/graph.cpp prints it,
# engine/typed_attrs.cpp converts it), without a literal key, so nothing here is exempt. This check fails naming
# file:line wherever a string key or a literal op name goes through the graph's API.
#   tools/check-attr-keys.sh <checkout>    scan engine/, nets/, apps/, bench/, tests/ and fuzz/
#   tools/check-attr-keys.sh --self-test   each pattern catches its sample; ordinary strings pass
set -euo pipefail

# Pairs: an extended regex, and what a line matching it does.
rules=(
  'get_(int|float|str)\("' 'reads an attribute by a string key'
  '\b(set|lookup)\("' 'sets or looks up an attribute by a string key'
  '\{"[a-z_]+", (int64_t|std::string)\(' 'spells an attribute key in an Attrs initialiser'
  'Attrs[^;(]*\{\{"' 'spells an attribute key in an Attrs initialiser'
  '\b(add|add_node|emit|emit_temporary)\([^;]*\{\{"' 'passes attributes as string keys'
  '\bop [!=]= "' 'compares an op with a literal name'
  '\.op = "' 'sets an op by a literal name'
  '\b(add|add_node)\("' 'adds a node by a literal op name'
  '\bemit(_temporary)?\([^,]+, "' 'emits a backward node by a literal op name'
  '\b(register_kernel|MASSMAP_REGISTER_ALL|op_def|op_exists|find_kernel)\("' 'names an op by a literal'
)
folders=(engine nets apps bench tests fuzz)

# Prints one "file:line: what: text" per violation under $1.
scan() {
  local root=$1 i
  for ((i = 0; i < ${#rules[@]}; i += 2)); do
    (cd "$root" && grep -rnE --include='*.h' --include='*.cpp' --include='*.cu' "${rules[i]}" "${folders[@]}" \
      2>/dev/null || true) | sed -E "s/^([^:]+:[0-9]+):[[:space:]]*/\1: ${rules[i + 1]}: /"
  done | sort -t: -k1,1 -k2,2n -u
}

self_test() {
  local dir
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  mkdir -p "$dir/engine"
  cat >"$dir/engine/bad.cpp" <<'EOF'
  const int64_t stride = n.attrs.get_int("stride", 1);
  u.attrs.set("lr_mult", 1.0);
  Attrs a{{"num_output", ws[0]}};
                 {"kernel", int64_t(kernel)},
  return g_.add(op, name, {x}, {{"ratio", ratio}});
  if (n.op == "conv2d") return;
  u.op = "sgd_update";
  g.add("relu", "relu1", {x});
  b.emit(n, "pool_grad", {x, dy}, x);
  MASSMAP_REGISTER_ALL("lrn", lrn_k);
EOF
  cat >"$dir/engine/good.cpp" <<'EOF'
    f("stride", stride);
  return g_.add(ops::conv2d, name, {x, w, b}, write_attrs(a));
  ValueId r = b.relu("relu1", x);
  j["receptive_field"] = {{"size", 3}};
  if (n.name == "loss") return n;
  throw BadConfig("node '" + n.name + "' (" + n.op + "): attribute 'stride' must be an integer");
EOF
  local found bad_lines
  found=$(scan "$dir")
  bad_lines=$(wc -l <"$dir/engine/bad.cpp")
  for ((line = 1; line <= bad_lines; ++line)); do
    if ! grep -q "^engine/bad.cpp:$line: " <<<"$found"; then
      echo "self-test: no rule caught engine/bad.cpp:$line: $(sed -n "${line}p" "$dir/engine/bad.cpp")" >&2
      return 1
    fi
  done
  if grep "^engine/good.cpp:" <<<"$found" >&2; then
    echo "self-test: the lines above are ordinary code, not violations" >&2
    return 1
  fi
  echo "attr keys self-test: all $bad_lines samples caught, no false alarm"
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
  exit
fi
root=${1:?usage: tools/check-attr-keys.sh <checkout> | --self-test}
checked=$(cd "$root" && find "${folders[@]}" \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' \) 2>/dev/null | wc -l)
if [ "$checked" -lt 50 ]; then
  echo "only $checked files found under $root: is it the checkout?" >&2
  exit 1
fi
violations=$(scan "$root")
if [ -n "$violations" ]; then
  echo "$violations"
  echo "$(wc -l <<<"$violations") lines spell an attribute key or op name: use the family's typed struct" \
    "(read_attrs / write_attrs) and its ops:: constant from engine/ops/<family>.h" >&2
  exit 1
fi
echo "attr keys: $checked files of ${folders[*]} use typed attributes and op-name constants"
