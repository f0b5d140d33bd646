#include "vtl/serve/server.h"

namespace vtl::serve {

const std::string& search_page_html() {
  static const std::string page =
#include "search_page_html.inc"
      ;
  return page;
}

}  // namespace vtl::serve
