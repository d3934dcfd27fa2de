"""Tools outside the study: building offline pretrained weights."""
