{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["native/original_dst.cc"],
      "defines": ["NAPI_VERSION=3"],
      "cflags_cc": ["-O2", "-Wall"]
    }
  ]
}
