#include "model/category.hpp"
