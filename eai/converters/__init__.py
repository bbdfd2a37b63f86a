"""Format readers (bvh, c3d, npy), skeleton profiles and label sources."""
