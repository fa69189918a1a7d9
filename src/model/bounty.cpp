#include "model/bounty.hpp"
