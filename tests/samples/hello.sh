#!/bin/sh
echo "a harmless script"
