#include "artifact/uri.hpp"
