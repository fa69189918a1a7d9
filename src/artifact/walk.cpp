#include "artifact/walk.hpp"
