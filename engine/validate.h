#pragma once
// The graph validator, run after every pass: each value has one producer (inputs and parameters none), every node
// reads only values produced before it, every parameter is still read by some node, and every forward node's
// output shapes are what its op's shape rule gives for its inputs. A broken graph is a BadConfig naming the node
// and the value.
#include "engine/graph.h"

namespace massmap {

void validate_graph(const Graph& g);

}  // namespace massmap
