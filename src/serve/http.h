#pragma once
// cpp-httplib as Debian builds it: a compiled library (libcpp-httplib.so) whose Request and
// Response layouts depend on these switches (its pkg-config Cflags). Every file that
// includes httplib.h must see the same ones, or the structs disagree with the library's.

#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif

#include <httplib.h>
