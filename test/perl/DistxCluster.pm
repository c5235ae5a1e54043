
# DistxCluster: helpers for the TAP tests of the distx Raft cluster
# (test/t/06x_cluster_*.pl).  Every node is a coordinator (DistxTest) that
# declares every member, itself included, as a distx server under the same
# name, as the cluster requires.

package DistxCluster;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;

our @EXPORT = qw(
  new_cluster_nodes declare_servers q1 self_status converged wait_leader
  postmaster_tree signal_tree
);

# new_cluster_nodes([names], conf => '...'): coordinators with the servers
# of all of them declared on each; returns a hash name => node.
sub new_cluster_nodes
{
	my ($names, %opts) = @_;
	my %nodes;

	$nodes{$_} = new_coordinator($_, conf => $opts{conf} // '') foreach @$names;
	declare_servers($nodes{$_}, \%nodes, @$names) foreach @$names;
	return \%nodes;
}

# declare_servers($on, \%nodes, @names): CREATE SERVER + USER MAPPING on $on
sub declare_servers
{
	my ($on, $nodes, @names) = @_;
	foreach my $name (@names)
	{
		my $n = $nodes->{$name};
		my $host = $n->host;
		my $port = $n->port;
		$on->safe_psql('postgres', qq{
CREATE SERVER $name FOREIGN DATA WRAPPER distx
  OPTIONS (host '$host', port '$port', dbname 'postgres');
CREATE USER MAPPING FOR PUBLIC SERVER $name OPTIONS (user 'postgres');
});
	}
	return;
}

sub q1
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# "role leader term" of a node as it sees itself
sub self_status
{
	my ($node) = @_;
	return q1($node, q{SELECT role || ' ' || coalesce(leader, '-') || ' ' || term
		FROM distx.raft_status WHERE is_self});
}

# Wait until the nodes agree on leader, term, applied index, number of
# voters and members; returns that common "leader term applied voters
# members" line, undef on timeout.
sub converged
{
	my ($nodes, @names) = @_;
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		my %seen;
		foreach my $name (@names)
		{
			my $s = q1($nodes->{$name}, q{SELECT coalesce(leader, '-') || ' ' || term || ' ' || applied_index || ' ' ||
				(SELECT count(*) FROM distx.raft_status WHERE voter) || ' ' ||
				(SELECT string_agg(node_id || ':' || node, ',' ORDER BY node_id) FROM distx.cluster_nodes)
				FROM distx.raft_status WHERE is_self});
			$seen{$s} = 1;
		}
		my @k = keys %seen;
		return $k[0] if @k == 1 && $k[0] !~ /^-/;
		usleep(100_000);
	}
	return undef;
}

# Wait until all the given nodes name the same leader, other than $not;
# returns it (undef on timeout).
sub wait_leader
{
	my ($nodes, $not, @names) = @_;
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		my %seen;
		$seen{ q1($nodes->{$_}, q{SELECT coalesce(distx.leader(), '-')}) } = 1 foreach @names;
		my @k = keys %seen;
		return $k[0] if @k == 1 && $k[0] ne '-' && (!defined $not || $k[0] ne $not);
		usleep(50_000);
	}
	return undef;
}

# the pids of a postmaster and all its descendants
sub postmaster_tree
{
	my ($node) = @_;
	my @all = ($node->{_pid});
	my %children;

	opendir(my $dh, '/proc') or return @all;
	foreach my $d (readdir $dh)
	{
		next unless $d =~ /^\d+$/;
		open(my $fh, '<', "/proc/$d/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/;
		push @{ $children{$1} }, $d;
	}
	closedir $dh;
	my @todo = ($node->{_pid});
	while (@todo)
	{
		my $p = shift @todo;
		foreach my $c (@{ $children{$p} // [] })
		{
			push @all, $c;
			push @todo, $c;
		}
	}
	return @all;
}

# send a signal to a whole server (SIGSTOP / SIGCONT)
sub signal_tree
{
	my ($node, $sig) = @_;
	my @pids = postmaster_tree($node);
	kill($sig, @pids);
	return scalar @pids;
}

1;
