// SHA-256 over files and byte streams (OpenSSL's EVP underneath).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "suanli/status.h"

namespace suanli {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t n);
  // Lowercase hex digest; the object is spent afterwards.
  std::string hex_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Hex SHA-256 of a whole file.
Expected<std::string> sha256_file(const std::string& path);

}  // namespace suanli
