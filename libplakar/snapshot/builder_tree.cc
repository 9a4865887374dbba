// push, the trees: directories assembled leaf by leaf as their entries complete, each leaf
// stored once full and each directory once its last leaf is, its parent then told.
#include "snapshot/builder_internal.h"

namespace plakar::build {

DirNode *Builder::new_node(DirNode *parent, size_t leaf, size_t slot, const Entry *prev, size_t expected)
{
	auto n = std::make_unique<DirNode>();
	n->parent = parent;
	n->leaf = leaf;
	n->slot = slot;
	if (prev && prev->type == EntryType::Directory && prev->has_tree) {
		n->has_prev = true;
		n->prev_tree = prev->tree;
	}
	n->expected = expected;
	n->leaves.emplace_back();
	n->leaves.back().entries.reserve(std::min(expected, kLeafMax));
	n->pending++; // for its first leaf
	parent->leaves[leaf].pending++;
	std::lock_guard lk(mu_);
	nodes_.push_front(std::move(n));
	nodes_.front()->self = nodes_.begin();
	return nodes_.front().get();
}

std::pair<size_t, size_t> Builder::append(DirNode *d, Entry e)
{
	size_t l = d->leaves.size() - 1;
	if (d->leaves[l].entries.size() == kLeafMax) {
		// Full: a new leaf takes the next entries, and this one is let go.
		d->leaves.emplace_back();
		d->leaves.back().entries.reserve(std::min(d->expected - d->appended, kLeafMax));
		d->pending++;
		entry_done(d, l);
		l++;
	}
	Leaf &leaf = d->leaves[l];
	// Reserved for what the directory listed: entries never move once handed to workers.
	if (leaf.entries.size() == leaf.entries.capacity())
		fail(Code::Error, "push: more entries than listed");
	leaf.entries.push_back(std::move(e));
	d->appended++;
	return {l, leaf.entries.size() - 1};
}

void Builder::entry_done(DirNode *n, size_t l)
{
	Leaf &leaf = n->leaves[l];
	if (leaf.pending.fetch_sub(1, std::memory_order_acq_rel) != 1)
		return;
	if (n == &top_)
		return;
	// A full leaf is stored now and its entries freed; the last one waits for the directory
	// (which may turn out unchanged, then nothing is stored).
	if (leaf.entries.size() == kLeafMax) {
		leaf.ref = {leaf.entries.front().name, store_leaf(repo_, leaf.entries.data(), leaf.entries.size())};
		leaf.stored = true;
		std::vector<Entry>().swap(leaf.entries);
	}
	dir_done(n);
}

void Builder::dir_done(DirNode *n)
{
	if (n->pending.fetch_sub(1, std::memory_order_acq_rel) != 1)
		return;
	Id tree;
	if (n->leaves.size() == 1 && !n->leaves[0].stored && n->has_prev && !n->changed && repo_.has_blob(n->prev_tree)) {
		tree = n->prev_tree;
	} else {
		std::vector<TreeNodeRef> refs;
		refs.reserve(n->leaves.size());
		for (auto &leaf : n->leaves) {
			if (!leaf.stored)
				leaf.ref = {leaf.entries.empty() ? std::string() : leaf.entries.front().name,
				            store_leaf(repo_, leaf.entries.data(), leaf.entries.size())};
			refs.push_back(leaf.ref);
		}
		tree = store_levels(repo_, std::move(refs));
	}
	DirNode *parent = n->parent;
	size_t l = n->leaf;
	Entry &e = parent->entry(l, n->slot);
	e.tree = tree;
	e.has_tree = true;
	if (!n->has_prev || tree != n->prev_tree)
		parent->changed = true;
	{
		std::lock_guard lk(mu_);
		nodes_.erase(n->self);
	}
	entry_done(parent, l);
}

} // namespace plakar::build
