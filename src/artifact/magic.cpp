#include "artifact/magic.hpp"
