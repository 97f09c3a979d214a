#pragma once
// The one RFC 4180 tokenizer of the CSV readers (CBIS-DDSM case descriptions, our manifest): fields separated by
// commas, fields holding commas, quotes or line breaks in double quotes, "" for a quote inside them, CRLF or LF line
// ends. Each record knows the line it starts on, for error messages ("<file>:<line>: ...").
#include <string>
#include <vector>

namespace massmap::data {

struct CsvRecord {
  std::vector<std::string> fields;  // as written (quotes removed, nothing trimmed)
  int line = 0;                     // 1-based line of the record's first character
  bool blank() const { return fields.size() == 1 && fields[0].empty(); }
};

class CsvReader {
 public:
  // `text` must outlive the reader; `name` (a file name) prefixes error messages.
  CsvReader(const std::string& text, std::string name);
  // The next record; false at the end of the text. BadInput "<name>:<line>: a quoted field is not closed".
  bool next(CsvRecord& record);
  // When the next line starts with `marker` (the manifest's "# key: value" lines before its header): that line as
  // written, without its line end, and true; false otherwise, reading nothing.
  bool next_marked_line(char marker, std::string& line);
  int line() const { return line_; }  // the line the next record starts on

 private:
  const std::string& text_;
  std::string name_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Without leading and trailing spaces, tabs, CR and LF (CBIS-DDSM's cells carry stray ones and line breaks).
std::string trim(const std::string& s);

}  // namespace massmap::data
