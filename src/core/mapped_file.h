// A read-only memory map of a whole file (RAII). Model weights are used in
// place from the map, never copied. Thread safety: immutable after open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "suanli/status.h"

namespace suanli {

class MappedFile {
 public:
  static Expected<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace suanli
