#include "data/csv.h"

#include "base/errors.h"

namespace massmap::data {

CsvReader::CsvReader(const std::string& text, std::string name) : text_(text), name_(std::move(name)) {
  if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;  // a UTF-8 byte-order mark, as spreadsheet exports write
}

bool CsvReader::next(CsvRecord& record) {
  if (pos_ >= text_.size()) return false;
  record.fields.assign(1, "");
  record.line = line_;
  bool quoted = false;
  while (pos_ < text_.size()) {
    const char c = text_[pos_++];
    if (quoted) {
      if (c != '"') {
        if (c == '\n') ++line_;
        record.fields.back() += c;
      } else if (pos_ < text_.size() && text_[pos_] == '"') {
        record.fields.back() += '"';
        ++pos_;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      record.fields.emplace_back();
    } else if (c == '\n') {
      ++line_;
      break;
    } else if (c != '\r') {
      record.fields.back() += c;
    }
  }
  if (quoted) throw BadInput(name_ + ":" + std::to_string(record.line) + ": a quoted field is not closed");
  return true;
}

bool CsvReader::next_marked_line(char marker, std::string& line) {
  if (pos_ >= text_.size() || text_[pos_] != marker) return false;
  size_t end = text_.find('\n', pos_);
  if (end == std::string::npos) end = text_.size();
  line = text_.substr(pos_, end - pos_);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  pos_ = end < text_.size() ? end + 1 : end;
  ++line_;
  return true;
}

std::string trim(const std::string& s) {
  const char* space = " \t\r\n";
  const size_t a = s.find_first_not_of(space);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(space) - a + 1);
}

}  // namespace massmap::data
