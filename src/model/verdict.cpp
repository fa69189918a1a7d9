#include "model/verdict.hpp"
