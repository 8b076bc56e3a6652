// original_dst: the destination a connection had before iptables REDIRECT/DNAT rewrote it, read from the
// kernel's conntrack entry with getsockopt(SO_ORIGINAL_DST) / getsockopt(IP6T_SO_ORIGINAL_DST), the same
// call Envoy's original_dst listener filter makes. Plain N-API (C ABI), so one binary serves every Node
// version with N-API 3+.
//
//   originalDst(fd: number, family: 4 | 6): { address: string, port: number } | number (an errno)
#include <node_api.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#endif

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>; spelled out because the latter
// does not compile as C++ on every distribution.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static napi_value MakeErrno(napi_env env, int err) {
  napi_value v;
  napi_create_int32(env, err, &v);
  return v;
}

static napi_value OriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "E_ARGS", "originalDst(fd, family) needs two arguments");
    return nullptr;
  }
  int32_t fd = -1, family = 0;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &family) != napi_ok ||
      fd < 0 || (family != 4 && family != 6)) {
    napi_throw_type_error(env, "E_ARGS", "originalDst(fd, family): fd must be a non-negative integer, family 4 or 6");
    return nullptr;
  }
#ifdef __linux__
  char text[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (family == 4) {
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) != 0) return MakeErrno(env, errno);
    inet_ntop(AF_INET, &sa.sin_addr, text, sizeof(text));
    port = ntohs(sa.sin_port);
  } else {
    struct sockaddr_in6 sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) != 0) return MakeErrno(env, errno);
    inet_ntop(AF_INET6, &sa.sin6_addr, text, sizeof(text));
    port = ntohs(sa.sin6_port);
  }
  napi_value result, address, portValue;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_int32(env, port, &portValue);
  napi_set_named_property(env, result, "address", address);
  napi_set_named_property(env, result, "port", portValue);
  return result;
#else
  return MakeErrno(env, 95);  // EOPNOTSUPP: conntrack exists only on Linux
#endif
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, OriginalDst, nullptr, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
