#!/usr/bin/perl
# One scheduler for all workers (issue 11): with vconv_max_running 1 and
# two workers, jobs from both workers run one at a time in arrival order
# (checked from the job JSON's started time and transcode_seconds), the
# queue positions are the same from both workers, a canceled queued job
# leaves its place at once, and a higher priority class goes first.
# Stills and info have a lane of their own: they do not wait behind a
# transcode, and a second still waits for the first like any job.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');
# the job that holds the one slot while the others queue; canceled once
# the queue has been looked at, so its length does not matter
my $long = VconvNginx::make_media($dir, 'slow', duration => 60,
                                  size => '640x480');

my $ng = VconvNginx->new(
    workers => 2,
    listen_opts => 'reuseport',
    http => "    vconv_max_running 1;\n",
    server => <<'EOF',
        add_header X-Worker $pid always;
        location = /api/jobs/high {
            vconv_upload /api/jobs/;
            vconv_priority_class high;
        }
        location = /api/jobs/low {
            vconv_upload /api/jobs/;
            vconv_priority_class low;
        }
EOF
)->start;
is(scalar @{ $ng->worker_pids }, 2, 'two workers');

# ms since the epoch from the JSON's "started" or "finished" (with ms)
sub started_ms { return time_ms($_[0], 'started') }

sub time_ms {
    my ($j, $k) = @_;
    my $v = $j->{$k} // return undef;
    my ($frac) = $v =~ /\.(\d{3})Z$/ or return undef;
    return VconvNginx::ts($v) * 1000 + $frac;
}

sub upload {
    my ($path, $file, $name) = @_;
    my $r = $ng->post_file($path, $file, name => $name, max_time => 60);
    is($r->{status}, 202, "$name -> 202") or diag($r->{body});
    return ($r->{json} ? $r->{json}{id} : undef, $r->{headers}{'x-worker'});
}

# the long job runs: it holds the only slot
sub start_long {
    my ($name) = @_;
    my ($id) = upload('/api/jobs?format=mp4', $long, $name);
    my $ok = VconvNginx::poll(60, sub {
        my $j = $ng->get("/api/jobs/$id")->{json} // {};
        return ($j->{status} // '') eq 'running';
    });
    ok($ok, "$name runs");
    return $id;
}

# every queued job, asked several times over new connections (so from
# both workers), has the position of its place in @$order
sub check_positions {
    my ($order, $what, $seen) = @_;
    my $good = 1;
    for my $round (1 .. 6) {
        for my $i (0 .. $#$order) {
            my $r = $ng->get("/api/jobs/$order->[$i]");
            $seen->{ $r->{headers}{'x-worker'} // '?' }++;
            my $j = $r->{json} // {};
            next if ($j->{status} // '') eq 'queued'
                    && ($j->{queue_position} // -1) == $i + 1;
            $good = 0;
            diag("$what: job $i: " . ($r->{body} // ''));
        }
    }
    ok($good, "$what: queue positions 1.." . scalar(@$order)
              . ' from every answer');
}

# --- arrival order across workers, positions from both -----------------

my $a = start_long('long A');

# jobs until both workers own one (reuseport spreads the connections)
my (@ids, %owner);
for my $n (1 .. 12) {
    last if @ids >= 3 && keys %owner >= 2;
    my ($id, $w) = upload('/api/jobs?format=mp4&height=120', $mp4,
                          "fifo$n.mp4");
    push @ids, $id;
    $owner{ $w // '?' }++;
}
cmp_ok(scalar keys %owner, '>=', 2, 'queued jobs owned by both workers: '
       . join ' ', map { "$_=$owner{$_}" } sort keys %owner);

my %seen;
check_positions(\@ids, 'FIFO', \%seen);
cmp_ok(scalar grep({ $_ ne '?' } keys %seen), '>=', 2,
       'positions answered by both workers');

my $j = $ng->get("/api/jobs/$a")->{json} // {};
is($j->{status}, 'running', 'A still runs while the others wait');

# cancel of a queued job: its place is free when DELETE answers
my $victim = $ids[1];
my $d = $ng->delete($victim);
is($d->{status}, 204, 'DELETE of a queued job -> 204');
is($ng->get("/api/jobs/$victim")->{status}, 404, 'the canceled job is gone');
ok(!-e $ng->store . "/$victim", 'its folder is gone');
splice @ids, 1, 1;
check_positions(\@ids, 'after the cancel', \%seen);

# the long job goes; the rest run one by one
is($ng->delete($a)->{status}, 204, 'DELETE of the running job -> 204');

my @jobs = map { $ng->wait_job($_, 120) // {} } @ids;
is_deeply([map { $_->{status} // '' } @jobs], [('done') x @ids],
          'every queued job done');

for my $i (0 .. $#jobs) {
    my $p = VconvNginx::probe(do {
        $ng->download($ids[$i], "$dir/o$i.mp4");
        "$dir/o$i.mp4";
    });
    is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{height}",
       'h264 120', "job $i output h264, 120 lines");
}

my @start = map { started_ms($_) } @jobs;
ok(!grep({ !defined } @start), 'every job says when it started')
    or diag(join ' ', map { $_->{started} // 'null' } @jobs);
for my $i (1 .. $#jobs) {
    last if grep { !defined } @start;
    my $prev_end = time_ms($jobs[$i - 1], 'finished') // 9e15;
    cmp_ok($start[$i], '>', $start[$i - 1],
           "job $i started after job " . ($i - 1) . ' (arrival order)');
    # the slot is granted again only once the task has returned
    cmp_ok($start[$i], '>=', $prev_end,
           "job $i started once job " . ($i - 1) . ' had ended');
}

# --- priority classes: high, then normal, then low ---------------------

my $b = start_long('long B');
my ($low) = upload('/api/jobs/low?format=mp4&height=96', $mp4, 'low.mp4');
my ($norm) = upload('/api/jobs?format=mp4&height=96', $mp4, 'normal.mp4');
my ($high) = upload('/api/jobs/high?format=mp4&height=96', $mp4,
                    'high.mp4');

check_positions([$high, $norm, $low], 'classes', \%seen);
is($ng->delete($b)->{status}, 204, 'DELETE of the running job -> 204');

my @cls = map { $ng->wait_job($_, 120) // {} } $high, $norm, $low;
is_deeply([map { $_->{status} // '' } @cls], [qw(done done done)],
          'high, normal and low all done');
my @cs = map { started_ms($_) // 0 } @cls;
ok($cs[0] < $cs[1] && $cs[1] < $cs[2],
   'started in class order: high, normal, low')
    or diag(join ' ', map { $_->{started} // 'null' } @cls);

# --- the quick lane: a thumbnail does not wait behind a movie ---------

my $c = start_long('long C');
my ($queued) = upload('/api/jobs?format=mp4&height=96', $mp4, 'behind.mp4');
my $jpg = $ng->post_file('/api/jobs?format=jpg&height=120&wait=1', $mp4,
                         name => 'thumb.mp4', max_time => 60,
                         output => "$dir/thumb.jpg");
is($jpg->{status}, 200, 'a jpg job answers while the slot is held');
my $tp = VconvNginx::probe("$dir/thumb.jpg");
is($tp && $tp->{video} && "$tp->{video}{codec_name} $tp->{video}{height}",
   'mjpeg 120', 'the thumbnail is a 120-line jpeg');
my $info = $ng->post_file('/api/jobs?format=info&wait=1', $mp4,
                          name => 'info.mp4', max_time => 60);
is($info->{status}, 200, 'an info job answers while the slot is held');
like($info->{body} // '', qr/"streams"/, 'with the streams');
my $list = $ng->post_file('/api/jobs?format=jpg,info&wait=1', $mp4,
                          name => 'both.mp4', max_time => 60);
is($list->{status}, 200, 'a jpg,info list answers while the slot is held');

my $cj = $ng->get("/api/jobs/$c")->{json} // {};
is($cj->{status}, 'running', 'the movie still runs');
my $qj = $ng->get("/api/jobs/$queued")->{json} // {};
is("$qj->{status} " . ($qj->{queue_position} // ''), 'queued 1',
   'the mp4 behind it still waits, first in its queue');

# stills wait for each other: the quick lane has one slot too, held here
# by a still whose raw upload stops half way (for less than the 2 s after
# which a starving job gives its slot back)
my $data = do { open my $in, '<:raw', $mp4 or die $!; local $/; <$in> };
my %before = map { $_ => 1 } @{ $ng->store_entries };
my $sock = $ng->raw_upload('/api/jobs?format=jpg&start=1.8', $data,
                           int(length($data) / 2), name => 'half.mp4');
my $first;
ok(VconvNginx::poll(30, sub {
    ($first) = grep { !$before{$_} } @{ $ng->store_entries };
    return 0 unless $first;
    my $j = $ng->get("/api/jobs/$first")->{json} // {};
    return ($j->{status} // '') eq 'running';
}, 0.05), 'a still whose upload stopped half way holds the quick slot');
my ($second) = upload('/api/jobs?format=jpg', $mp4, 'second.mp4');
my $sj = $ng->get("/api/jobs/$second")->{json} // {};
is("$sj->{status} " . ($sj->{queue_position} // ''), 'queued 1',
   'a second still waits for the quick lane\'s slot');
print $sock substr($data, int(length($data) / 2));
my $fj = $ng->wait_job($first, 60) // {};
is($fj->{status}, 'done', 'the first still ends once its upload does');
close $sock;
my $sd = $ng->wait_job($second, 60) // {};
is($sd->{status}, 'done', 'then the second still runs');
is($ng->delete($c)->{status}, 204, 'DELETE of the movie -> 204');
is(($ng->wait_job($queued, 120) // {})->{status}, 'done',
   'and the mp4 behind it runs');

$ng->assert_clean_log;
$ng->stop;
done_testing;
