#include "vtl/core/html.h"

namespace vtl {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* page_style() {
  return R"(
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
svg .t{font-size:13px;font-weight:600}svg .a{font-size:10px;fill:#555}
svg .g{stroke:#eee}svg .p{stroke:#999;stroke-dasharray:3,3}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.grid{display:flex;flex-wrap:wrap;gap:10px}.cell{width:120px;font-size:11px;text-align:center;overflow-wrap:anywhere}
.cell img{max-width:110px;max-height:110px;border:1px solid #ccc}
.bad{color:#b00}pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto}
)";
}

std::string page_begin(const std::string& title) {
  return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title><style>" + page_style() + "</style></head><body><h1>" + html_escape(title) +
         "</h1>";
}

std::string page_end() { return "</body></html>\n"; }

}  // namespace vtl
