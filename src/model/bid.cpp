#include "model/bid.hpp"
