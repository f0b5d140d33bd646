#pragma once
// Building blocks of vtl's self-contained HTML pages (report.html of a run, compare.html
// of `vtl compare`): one look, nothing fetched from the network.

#include <string>

namespace vtl {

/// `text` with &, <, >, " replaced by entities (safe in element text and quoted attributes).
std::string html_escape(const std::string& text);

/// The CSS every vtl page inlines in its <style> element.
const char* page_style();

/// "<!DOCTYPE html>...<body><h1>title</h1>" with the page style inlined; close with
/// page_end().
std::string page_begin(const std::string& title);
std::string page_end();

}  // namespace vtl
