#pragma once
// report.html: one self-contained page (inline SVG plots, PNG overlays as data URIs, inline style; no script and no
// reference to anything outside the file) built from metrics.json alone, so the page and the numbers never differ.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace massmap::search {

struct ReportExample {
  std::string title;
  std::string png;  // encoded PNG bytes
  int width = 0, height = 0;
};

std::string render_report(const nlohmann::json& metrics, const std::vector<ReportExample>& examples);

// RFC 4648 base64 of `bytes` (with padding).
std::string base64(const std::string& bytes);

}  // namespace massmap::search
