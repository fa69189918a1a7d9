// Random (version 4) UUIDs, as Python's str(uuid.uuid4()) writes them: Celery task ids and
// kombu delivery tags.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pss {

// A fresh random UUID, "xxxxxxxx-xxxx-4xxx-Yxxx-xxxxxxxxxxxx" (lowercase hex, Y in 8..b), from
// std::random_device (the kernel's CSPRNG on Linux). Thread-safe. Throws std::system_error if
// no randomness is available.
std::string uuid4();

// The version 4 UUID made from these 16 random bytes: the version and variant bits are set, the
// rest kept (uuid4() is uuid4_from_bytes(random bytes)).
std::string uuid4_from_bytes(std::array<std::uint8_t, 16> bytes);

// True for the canonical textual form of any UUID: 8-4-4-4-12 hex digits, either case.
bool is_uuid(std::string_view text);

} // namespace pss
