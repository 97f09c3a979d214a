#pragma once
// Registration of the built-in ops. Each op family file engine/ops/<family>.cpp defines register_<family>_ops();
// CMake generates register_builtin_ops() calling every one of them (no list to keep by hand), each call inside
// begin_family("<family>") so that every op records the family that defined it (OpDef::family).
namespace massmap {

void register_builtin_ops();

}  // namespace massmap
