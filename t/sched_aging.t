#!/usr/bin/perl
# Priority classes age (issue 11): with vconv_priority_aging 2s, a low
# job that has waited longer than the classes' spread (2 x 2 s) is granted
# before a newer high and a newer normal job, while a low job that has
# just come still goes after a high one.  Checked by queue positions (from
# both workers) and by the order the jobs started in.

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
# holds the one slot while the others queue; canceled afterwards
my $long = VconvNginx::make_media($dir, 'slow', duration => 60,
                                  size => '640x480');

my $ng = VconvNginx->new(
    workers => 2,
    http => "    vconv_max_running 1;\n    vconv_priority_aging 2s;\n",
    server => <<'EOF',
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
    return $r->{json} ? $r->{json}{id} : '';
}

sub start_long {
    my ($name) = @_;
    my $id = upload('/api/jobs?format=mp4', $long, $name);
    ok(VconvNginx::poll(60, sub {
        ($ng->get("/api/jobs/$id")->{json}{status} // '') eq 'running' }),
       "$name runs");
    return $id;
}

# each job's queue position, asked four times (new connections: both
# workers answer), must be the same every time
sub positions {
    my (@ids) = @_;
    my @pos;
    for my $k (0 .. $#ids) {
        my %seen;
        for (1 .. 4) {
            my $j = $ng->get("/api/jobs/$ids[$k]")->{json} // {};
            $seen{ $j->{queue_position} // 'none' }++;
        }
        push @pos, join('/', sort keys %seen);
    }
    return join ' ', @pos;
}

sub run_in_order {
    my ($what, $long_id, @ids) = @_;
    is($ng->delete($long_id)->{status}, 204, "$what: the long job canceled");
    my @j = map { $ng->wait_job($_, 120) // {} } @ids;
    is(join(' ', map { $_->{status} // '' } @j),
       join(' ', ('done') x @ids), "$what: all done");
    my @s = map { time_ms($_, 'started') // 0 } @j;
    ok(!grep({ $s[$_] <= $s[$_ - 1] } 1 .. $#s),
       "$what: started in the expected order")
        or diag(join ' ', map { $_->{started} // 'null' } @j);
}

# --- a fresh low job goes after a high one ---------------------------

my $a = start_long('long A');
my $low = upload('/api/jobs/low?format=mp4&height=96', $mp4, 'low.mp4');
my $high = upload('/api/jobs/high?format=mp4&height=96', $mp4,
                  'high.mp4');
is(positions($high, $low), '1 2', 'fresh: high 1st, low 2nd');
run_in_order('fresh', $a, $high, $low);

# --- a low job that waited longer than the spread goes first ------------

my $b = start_long('long B');
my $old = upload('/api/jobs/low?format=mp4&height=96', $mp4, 'old-low.mp4');
my $t0 = time;
sleep 0.2 while time < $t0 + 5;    # more than 2 x 2 s
my $high2 = upload('/api/jobs/high?format=mp4&height=96', $mp4,
                   'new-high.mp4');
my $norm = upload('/api/jobs?format=mp4&height=96', $mp4,
                  'new-normal.mp4');
is(positions($old, $high2, $norm), '1 2 3',
   'aged: the old low job 1st, then the new high, then the new normal');
run_in_order('aged', $b, $old, $high2, $norm);

$ng->assert_clean_log;
$ng->stop;

# --- the directive's value is checked ----------------------------------

my $bad = VconvNginx->new(workers => 1,
                          http => "    vconv_priority_aging soon;\n");
my ($ok, $out) = $bad->test_conf;
ok(!$ok && $out =~ /"vconv_priority_aging" directive invalid value/,
   'nginx -t refuses a bad vconv_priority_aging') or diag($out);

done_testing;
